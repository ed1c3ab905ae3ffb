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
    /// ("PostgreSql", Aspire's) and the loops are added for the long-running agent (which also calls
    /// AddServiceDefaults); a run-once agent gets telemetry only when an OTLP endpoint is configured, so that a
    /// one-shot scan starts and stops fast.
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
        // Aspire's PostgreSQL client integration (data source, health check, Npgsql tracing and metrics). The connection
        // string is the one AgentSettings resolved (ConnectionStrings:monitordb, or the PG* variables), and the server's
        // type catalogue is not loaded: the agent writes built-in types only, so there is less to ask and load at start.
        // A run-once agent has no health endpoint, and without an OTLP endpoint no telemetry at all, so that a one-shot
        // scan starts as fast as it can (OpenTelemetry's start costs about 20 ms and 4.5 MB there).
        var exportsOtlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var withTelemetry = !settings.RunOnce || exportsOtlp;
        builder.AddNpgsqlDataSource(
            DatabaseConnection.ConnectionStringName,
            npgsql =>
            {
                npgsql.ConnectionString = settings.ConnectionString;
                npgsql.DisableHealthChecks = settings.RunOnce;
                npgsql.DisableTracing = !withTelemetry;
                npgsql.DisableMetrics = !withTelemetry;
            },
            dataSource => dataSource.ConfigureTypeLoading(types => types.EnableTypeLoading(false)));

        if (settings.RunOnce && exportsOtlp)
        {
            // The long-running agent gets this from AddServiceDefaults.
            builder.ConfigureOpenTelemetry();
        }

        if (withTelemetry)
        {
            services.AddOpenTelemetry()
                .WithTracing(tracing => tracing.AddSource(AgentTelemetry.SourceName))
                .WithMetrics(metrics => metrics.AddMeter(AgentTelemetry.SourceName));
        }

        services.Configure<HostOptions>(options => options.ShutdownTimeout = ShutdownTimeout);
        if (settings.RunOnce)
        {
            services.AddMetrics();
            services.AddSingleton<RunOnceCommand>();
        }
        else
        {
            services.AddSingleton<ScanSpool>();
            // Hosted services stop in reverse order: scanning stops first, then the store loop drains the spool.
            services.AddHostedService<StoreLoop>();
            services.AddHostedService<ScanLoop>();
        }

        return builder;
    }
}
