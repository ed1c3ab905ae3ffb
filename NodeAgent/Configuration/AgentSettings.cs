using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace NodeAgent.Configuration;

/// <summary>
/// The agent's validated configuration. <see cref="Load"/> is the single place where configuration is
/// read and checked, so that a bad value stops the agent at start with one line naming the key.
/// </summary>
public sealed record AgentSettings(
    string NodeName,
    string MountPath,
    TimeSpan ScanInterval,
    bool RunOnce,
    int SpoolCapacity,
    long SpoolMaxEntries,
    string ConnectionString)
{
    public const string Section = "Agent";
    public const string DefaultMountPath = "/mnt/node-data";
    public static readonly TimeSpan DefaultScanInterval = TimeSpan.FromMinutes(1);
    public const int DefaultSpoolCapacity = 1440;
    public const long DefaultSpoolMaxEntries = 1_000_000;

    /// <summary>Where the database lives, for messages: host, port, database and user, never the password.</summary>
    public string DatabaseDescription => DatabaseConnection.Describe(ConnectionString);

    public static AgentSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(Section);

        var nodeName = section["NodeName"];
        if (string.IsNullOrWhiteSpace(nodeName))
        {
            nodeName = Environment.MachineName;
        }

        var mountPath = section["MountPath"];
        if (mountPath is not null && string.IsNullOrWhiteSpace(mountPath))
        {
            throw new AgentConfigurationException("Agent:MountPath is empty; set it to the directory to scan (default /mnt/node-data).");
        }

        mountPath ??= DefaultMountPath;
        if (!Path.IsPathFullyQualified(mountPath))
        {
            throw new AgentConfigurationException($"Agent:MountPath '{mountPath}' must be an absolute path.");
        }

        var scanInterval = ReadTimeSpan(section, "ScanInterval", DefaultScanInterval);
        if (scanInterval < TimeSpan.FromSeconds(1) || scanInterval > TimeSpan.FromDays(1))
        {
            throw new AgentConfigurationException($"Agent:ScanInterval '{section["ScanInterval"]}' must be between 00:00:01 and 1.00:00:00.");
        }

        var runOnce = ReadBool(section, "RunOnce", false);
        var spoolCapacity = (int)ReadInteger(section, "SpoolCapacity", DefaultSpoolCapacity, 1, 1_000_000);
        var spoolMaxEntries = ReadInteger(section, "SpoolMaxEntries", DefaultSpoolMaxEntries, 1, 1_000_000_000);

        return new AgentSettings(
            nodeName.Trim(),
            Path.TrimEndingDirectorySeparator(mountPath) is { Length: > 0 } trimmed ? trimmed : "/",
            scanInterval,
            runOnce,
            spoolCapacity,
            spoolMaxEntries,
            DatabaseConnection.Resolve(configuration));
    }

    private static TimeSpan ReadTimeSpan(IConfigurationSection section, string key, TimeSpan fallback)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        return TimeSpan.TryParse(raw, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new AgentConfigurationException($"{Section}:{key} '{raw}' is not a time span (expected hh:mm:ss, e.g. 00:01:00).");
    }

    private static bool ReadBool(IConfigurationSection section, string key, bool fallback)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        return bool.TryParse(raw.Trim(), out var value)
            ? value
            : throw new AgentConfigurationException($"{Section}:{key} '{raw}' is not a boolean (expected true or false).");
    }

    private static long ReadInteger(IConfigurationSection section, string key, long fallback, long min, long max)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        if (!long.TryParse(raw.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new AgentConfigurationException($"{Section}:{key} '{raw}' must be a whole number from {min} to {max}.");
        }

        return value;
    }
}
