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
    /// <summary>Registers the agent's services, its PostgreSQL data source (as Aspire.Npgsql does) and its telemetry.</summary>
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
        services.AddSingleton<ScanSpool>();

        services.AddNpgsqlDataSource(settings.ConnectionString);
        services.AddHealthChecks().AddNpgSql(name: "postgresql", tags: ["ready"]);

        services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddSource(AgentTelemetry.SourceName).AddNpgsql())
            .WithMetrics(metrics => metrics.AddMeter(AgentTelemetry.SourceName).AddNpgsqlInstrumentation());

        services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(30));
        if (settings.RunOnce)
        {
            services.AddSingleton<RunOnceCommand>();
        }
        else
        {
            services.AddHostedService<ScanLoop>();
            services.AddHostedService<StoreLoop>();
        }

        return builder;
    }
}
