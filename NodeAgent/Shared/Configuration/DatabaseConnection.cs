using Microsoft.Extensions.Configuration;
using Npgsql;

namespace NodeAgent.Shared.Configuration;

/// <summary>
/// Resolves the PostgreSQL connection: <c>ConnectionStrings:monitordb</c> when set (Aspire's
/// <c>WithReference</c> sets it), otherwise the standard libpq variables PGHOST, PGPORT, PGDATABASE,
/// PGUSER, PGPASSWORD, PGSSLMODE and PGSSLROOTCERT (what a Kubernetes Secret usually provides).
/// </summary>
public static class DatabaseConnection
{
    public const string ConnectionStringName = "monitordb";
    public const string ConnectionStringKey = "ConnectionStrings:" + ConnectionStringName;
    public const string ApplicationName = "nodeagent";

    public static string Resolve(IConfiguration configuration)
    {
        var configured = configuration.GetConnectionString(ConnectionStringName);
        NpgsqlConnectionStringBuilder builder;
        if (!string.IsNullOrWhiteSpace(configured))
        {
            try
            {
                builder = new NpgsqlConnectionStringBuilder(configured);
            }
            catch (ArgumentException)
            {
                // Npgsql's message quotes the part it could not parse, which may be part of a password.
                throw new AgentConfigurationException(
                    $"{ConnectionStringKey} is not a valid Npgsql connection string (Key=value pairs separated by ';'; quote values that contain ';').");
            }

            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                throw new AgentConfigurationException($"{ConnectionStringKey} has no Host.");
            }
        }
        else if (!string.IsNullOrWhiteSpace(configuration["PGHOST"]))
        {
            builder = FromLibpqVariables(configuration);
        }
        else
        {
            throw new AgentConfigurationException(
                $"{ConnectionStringKey} is not set (environment variable ConnectionStrings__{ConnectionStringName}), and neither is PGHOST.");
        }

        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = ApplicationName;
        }

        return builder.ConnectionString;
    }

    /// <summary>host:port/database as user, for log lines and errors; never the password.</summary>
    public static string Describe(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database} as {builder.Username}";
    }

    private static NpgsqlConnectionStringBuilder FromLibpqVariables(IConfiguration configuration)
    {
        var builder = new NpgsqlConnectionStringBuilder { Host = configuration["PGHOST"] };
        var port = configuration["PGPORT"];
        if (!string.IsNullOrWhiteSpace(port))
        {
            builder.Port = int.TryParse(port, out var value) && value is > 0 and < 65536
                ? value
                : throw new AgentConfigurationException($"PGPORT '{port}' is not a TCP port.");
        }

        builder.Database = NullIfBlank(configuration["PGDATABASE"]);
        builder.Username = NullIfBlank(configuration["PGUSER"]);
        builder.Password = NullIfBlank(configuration["PGPASSWORD"]);
        var sslMode = NullIfBlank(configuration["PGSSLMODE"]);
        if (sslMode is not null)
        {
            builder.SslMode = sslMode.ToLowerInvariant() switch
            {
                "disable" => SslMode.Disable,
                "allow" => SslMode.Allow,
                "prefer" => SslMode.Prefer,
                "require" => SslMode.Require,
                "verify-ca" => SslMode.VerifyCA,
                "verify-full" => SslMode.VerifyFull,
                _ => throw new AgentConfigurationException($"PGSSLMODE '{sslMode}' is not one of disable, allow, prefer, require, verify-ca, verify-full."),
            };
        }

        var rootCertificate = NullIfBlank(configuration["PGSSLROOTCERT"]);
        if (rootCertificate is not null)
        {
            // libpq's name for the CA certificate(s) that verify the server (verify-ca, verify-full).
            builder.RootCertificate = File.Exists(rootCertificate)
                ? rootCertificate
                : throw new AgentConfigurationException($"PGSSLROOTCERT '{rootCertificate}' does not exist (is the CA Secret mounted?).");
        }

        return builder;
    }

    private static string? NullIfBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
