using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Changes;

/// <summary>
/// File changes: create, modify, delete, rename and attrib events of the monitored directory, seen by inotify and
/// reconciled with every scan, with hashes and deduplicated content snapshots. Glossary: an <em>event</em> is one
/// change of one path; a <em>batch</em> is the events of one round of the loop, stored in one transaction; the
/// <em>state</em> is the current entry of every path (<c>file_state</c>); a <em>snapshot</em> is a file's content,
/// stored once per SHA-256 (<c>file_contents</c>).
/// </summary>
public sealed class ChangesCapability : ICapability
{
    public string Name => "changes";

    public IReadOnlyList<SettingKey> Settings => ChangesSettings.Keys;

    public void Add(AgentBuilder agent) => agent.AddChanges();
}

public static class ChangesAgentBuilderExtensions
{
    /// <summary>Watches the monitored directory for changes (a long-running agent only; a one-shot run has nothing to watch).</summary>
    public static AgentBuilder AddChanges(this AgentBuilder agent)
    {
        var settings = ChangesSettings.Load(agent.Configuration);
        if (!settings.Enabled || agent.Settings.RunOnce)
        {
            return agent;
        }

        agent.Services.AddSingleton(settings);
        agent.Services.AddSingleton<ChangesMetrics>();
        agent.Services.AddSingleton(services =>
        {
            var metrics = services.GetRequiredService<ChangesMetrics>();
            var detector = new ChangeDetector(settings, agent.Settings.NodeName, agent.Settings.MountPath, metrics,
                services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILogger<ChangeDetector>>());
            metrics.ObserveWatches(() => detector.Watches, () => detector.Unwatched);
            metrics.ObserveHeld(() => detector.StateBytes, () => detector.FoundScanBytes);
            return detector;
        });

        return agent
            .AddDelivery<FileEventBatch, ChangeStore>(
                "changes",
                new FileEventBatchKind(),
                expectedEvery: null,
                services => services.GetRequiredService<ChangesMetrics>().Delivery,
                _ => settings.SpoolLimits,
                (services, spool) => services.GetRequiredService<ChangesMetrics>().ObserveSpool(() => spool.Total(b => b.Events.Count)))
            .AddLoop<ChangeLoop>();
    }
}
