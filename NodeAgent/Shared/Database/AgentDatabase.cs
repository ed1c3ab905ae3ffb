using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Database;

/// <summary>The one PostgreSQL data source every capability writes through, and the migrations runner.</summary>
internal static class AgentDatabase
{
    /// <summary>The name Aspire.Npgsql gives its health check.</summary>
    public const string AspireHealthCheckName = "PostgreSql";

    /// <summary>
    /// Aspire's PostgreSQL client integration (data source, health check, Npgsql tracing and metrics). The connection
    /// string is the one <see cref="AgentSettings"/> resolved (<c>ConnectionStrings:monitordb</c>, or the PG*
    /// variables), and the server's type catalogue is not loaded: the agent writes built-in types only, so there is
    /// less to ask and load at start. A run-once agent has no health endpoint, and with <paramref name="withTelemetry"/>
    /// false no Npgsql telemetry (OpenTelemetry's start costs a one-shot run about 20 ms and 4.5 MB).
    /// </summary>
    public static void AddAgentDatabase(this IHostApplicationBuilder builder, AgentSettings settings, bool withTelemetry)
    {
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
        builder.Services.AddSingleton<SchemaMigrator>();

        // An unreachable database makes /health Degraded (200), not Unhealthy: the DaemonSet's readiness must not turn
        // every pod NotReady (and stall a rollout) during a database outage, while the spool keeps what is collected.
        // A database that refuses the agent makes the capabilities' own entries Unhealthy (DeliveryHealth).
        builder.Services.Configure<HealthCheckServiceOptions>(options =>
        {
            foreach (var registration in options.Registrations.Where(r => r.Name == AspireHealthCheckName))
            {
                registration.FailureStatus = HealthStatus.Degraded;
            }
        });
    }
}
