using System.Reflection;
using System.Text;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Hosting;

/// <summary>
/// The agent's command line: <c>--help</c> / <c>-h</c> anywhere (the settings, with their defaults), <c>--version</c>, and
/// settings as .NET reads them (<c>--Key=value</c>, <c>--Key value</c>, <c>/Key=value</c>, <c>Key=value</c>). Anything
/// else, and any setting the agent does not know, is refused: a typo must not go unnoticed (with RunOnce it would
/// still have stored a scan).
/// </summary>
internal static class CommandLine
{
    public enum Action { Run, Help, Version }

    /// <summary>Keys the host itself understands besides the capabilities' settings (ASP.NET Core and .NET hosting).</summary>
    private static readonly string[] HostKeys = ["urls", "http_ports", "https_ports", "environment", "contentRoot", "applicationName"];

    private static readonly string[] HostSections = ["ConnectionStrings:", "Logging:", "Kestrel:", "Aspire:", "OTEL_"];

    public static readonly SettingKey[] DatabaseKeys =
    [
        new(DatabaseConnection.ConnectionStringKey, "none", "Npgsql connection string (one of it and PGHOST is required)"),
        new("PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD", "none", "used when ConnectionStrings:monitordb is not set"),
        new("PGSSLMODE, PGSSLROOTCERT", "none", "TLS: disable ... verify-full, and the CA certificate file that verifies the server"),
        new("urls (ASPNETCORE_URLS, HTTP_PORTS)", "http://*:9090", "where /metrics, /health and /alive are served"),
        new("OTEL_EXPORTER_OTLP_ENDPOINT", "none", "OTLP export of traces, metrics and logs"),
    ];

    private static readonly string[] LibpqKeys = ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"];

    /// <exception cref="AgentConfigurationException">an argument that is not a known setting</exception>
    public static Action Parse(string[] args, IReadOnlyList<SettingKey> settings)
    {
        // Help wins wherever it appears: whoever adds it to a command line wants to know what the rest means.
        if (args.Any(a => a is "--help" or "-h" or "-?"))
        {
            return Action.Help;
        }

        if (args is ["--version"])
        {
            return Action.Version;
        }

        for (var i = 0; i < args.Length; i++)
        {
            var argument = args[i];
            string key;
            if (argument.StartsWith("--", StringComparison.Ordinal) || argument.StartsWith('/'))
            {
                key = argument.TrimStart('-', '/');
                var equals = key.IndexOf('=', StringComparison.Ordinal);
                if (equals >= 0)
                {
                    key = key[..equals];
                }
                else if (++i >= args.Length)
                {
                    throw new AgentConfigurationException($"argument '{argument}' has no value (use --Key=value; nodeagent --help lists the settings).");
                }
            }
            else if (argument.IndexOf('=', StringComparison.Ordinal) is > 0 and var equals)
            {
                key = argument[..equals];
            }
            else
            {
                throw new AgentConfigurationException($"unexpected argument '{argument}' (settings are given as --Key=value; nodeagent --help lists them).");
            }

            if (!IsKnown(key, settings))
            {
                throw new AgentConfigurationException($"unknown setting '{key}' in argument '{argument}' (nodeagent --help lists the settings).");
            }
        }

        return Action.Run;
    }

    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public static string Usage(IReadOnlyList<SettingKey> settings)
    {
        var rows = settings.Concat(DatabaseKeys).ToList();
        var width = rows.Max(r => r.Key.Length) + 2;
        var defaults = rows.Max(r => r.Default.Length) + 2;
        var text = new StringBuilder()
            .AppendLine($"nodeagent {Version}: records what is in a node's monitored directory in PostgreSQL, and serves /metrics and /health.")
            .AppendLine()
            .AppendLine("Usage: nodeagent [--Key=value ...]        (or environment variables Key__Sub=value, or appsettings.json)")
            .AppendLine("       nodeagent --help | --version")
            .AppendLine()
            .AppendLine($"  {"setting".PadRight(width)}{"default".PadRight(defaults)}meaning");
        foreach (var row in rows)
        {
            text.AppendLine($"  {row.Key.PadRight(width)}{row.Default.PadRight(defaults)}{row.Meaning}{(row.Alias is null ? "" : $" (formerly {row.Alias})")}");
        }

        return text.AppendLine()
            .AppendLine("Exit codes: 0 done (or stopped), 1 not stored (run once) or unexpected error, 2 bad configuration or unusable mount path.")
            .ToString();
    }

    private static bool IsKnown(string key, IReadOnlyList<SettingKey> settings) =>
        settings.Any(s => Same(s.Key, key) || (s.Alias is not null && Same(s.Alias, key)))
        || HostKeys.Any(k => Same(k, key))
        || LibpqKeys.Any(k => Same(k, key))
        || HostSections.Any(prefix => key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && key.Length > prefix.Length);

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
}
