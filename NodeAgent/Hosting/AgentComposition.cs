using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NodeAgent.Configuration;
using NodeAgent.Inventory;
using NodeAgent.Storage;
using NodeAgent.Telemetry;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace NodeAgent.Hosting;

public static class AgentComposition
{
    public const int DefaultPort = 9090;
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Registers the agent's services and its PostgreSQL data source. Telemetry, the database health check
    /// and the loops are added for the long-running agent (which also calls AddServiceDefaults); a run-once
    /// agent gets telemetry only when an OTLP endpoint is configured, so that a one-shot scan starts and stops fast.
    /// </summary>
    public static IHostApplicationBuilder AddNodeAgent(this IHostApplicationBuilder builder, AgentSettings settings)
    {
        var services = builder.Services;
        services.AddSingleton(settings);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<AgentTelemetry>();
        services.AddSingleton<TreeScanner>();
        services.AddSingleton<InventoryCollector>();
        services.AddSingleton<SchemaMigrator>();
        services.AddSingleton<InventoryStore>();
        // The slim builder with only what the agent uses (arrays, TLS), and no loading of the server's type
        // catalogue (it writes built-in types only): less to load, compile and ask at start.
        services.AddNpgsqlSlimDataSource(settings.ConnectionString, npgsql => npgsql
            .EnableArrays()
            .EnableTransportSecurity()
            .ConfigureTypeLoading(types => types.EnableTypeLoading(false)));

        var exportsOtlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (settings.RunOnce && exportsOtlp)
        {
            // The long-running agent gets this from AddServiceDefaults.
            builder.ConfigureOpenTelemetry();
        }

        if (!settings.RunOnce || exportsOtlp)
        {
            services.AddOpenTelemetry()
                .WithTracing(tracing => tracing.AddSource(AgentTelemetry.SourceName).AddNpgsql())
                .WithMetrics(metrics => metrics.AddMeter(AgentTelemetry.SourceName).AddNpgsqlInstrumentation());
        }

        services.Configure<HostOptions>(options => options.ShutdownTimeout = ShutdownTimeout);
        if (settings.RunOnce)
        {
            services.AddMetrics();
            services.AddSingleton<RunOnceCommand>();
        }
        else
        {
            services.AddHealthChecks().AddNpgSql(name: "postgresql", tags: ["ready"]);
            services.AddSingleton<ScanSpool>();
            // Hosted services stop in reverse order: scanning stops first, then the store loop drains the spool.
            services.AddHostedService<StoreLoop>();
            services.AddHostedService<ScanLoop>();
        }

        return builder;
    }
}
