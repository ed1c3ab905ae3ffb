using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;

namespace NodeAgent.Shared.Hosting;

/// <summary>
/// What a capability's <c>Add&lt;Capability&gt;()</c> registers itself with: the host's services and configuration,
/// the shared settings, and the shared delivery pipeline for its records.
/// </summary>
public sealed class AgentBuilder
{
    internal AgentBuilder(IHostApplicationBuilder host, AgentSettings settings)
    {
        Host = host;
        Settings = settings;
    }

    public IHostApplicationBuilder Host { get; }

    public IServiceCollection Services => Host.Services;

    public IConfiguration Configuration => Host.Configuration;

    public AgentSettings Settings { get; }

    /// <summary>
    /// Registers the delivery of records of kind <typeparamref name="T"/>: their store, their outcomes (counted with
    /// the capability's <paramref name="counters"/>) and, for the long-running agent, a bounded spool and the store loop
    /// that drains it, and the capability's entry in /health (<paramref name="capability"/>, from
    /// <see cref="DeliveryHealth"/>: a record is expected to be stored every <paramref name="expectedEvery"/>, when records come on a schedule). Call it
    /// before registering the capability's own loops: hosted services stop in reverse order, so the collecting loop
    /// stops first and the store loop then drains what it left.
    /// </summary>
    public AgentBuilder AddDelivery<T, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TStore>(
        string capability,
        RecordKind<T> kind,
        TimeSpan? expectedEvery,
        Func<IServiceProvider, DeliveryCounters> counters,
        Func<IServiceProvider, SpoolLimits> limits,
        Action<IServiceProvider, Spool<T>>? observeSpool = null)
        where T : class
        where TStore : class, IRecordStore<T>
    {
        Services.AddSingleton(kind);
        Services.AddSingleton<TStore>();
        Services.AddSingleton<IRecordStore<T>>(services => services.GetRequiredService<TStore>());
        Services.AddKeyedSingleton(capability, (services, _) => new DeliveryHealth(services.GetRequiredService<TimeProvider>()));
        Services.AddSingleton(services => new DeliveryOutcomes<T>(kind, counters(services), services.GetRequiredService<ILogger<DeliveryOutcomes<T>>>(),
            services.GetRequiredKeyedService<DeliveryHealth>(capability)));
        if (!Settings.RunOnce)
        {
            Services.AddHealthChecks().Add(new HealthCheckRegistration(
                capability,
                services => new DeliveryHealthCheck(services.GetRequiredKeyedService<DeliveryHealth>(capability), kind.Noun, expectedEvery),
                HealthStatus.Unhealthy,
                tags: null));
            Services.AddSingleton(services =>
            {
                var spool = new Spool<T>(limits(services), kind, services.GetRequiredService<DeliveryOutcomes<T>>());
                observeSpool?.Invoke(services, spool);
                return spool;
            });
            Services.AddHostedService<DeliveryLoop<T>>();
        }

        return this;
    }

    /// <summary>Registers what the capability does when the agent runs once.</summary>
    public AgentBuilder AddRunOnce<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TJob>() where TJob : class, IRunOnceJob
    {
        if (Settings.RunOnce)
        {
            Services.AddSingleton<IRunOnceJob, TJob>();
        }

        return this;
    }

    /// <summary>Registers a loop of the long-running agent (collecting, watching); a run-once agent has none.</summary>
    public AgentBuilder AddLoop<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TLoop>() where TLoop : class, IHostedService
    {
        if (!Settings.RunOnce)
        {
            Services.AddHostedService<TLoop>();
        }

        return this;
    }
}
