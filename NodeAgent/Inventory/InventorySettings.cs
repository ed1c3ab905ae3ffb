using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Inventory;

/// <summary>
/// Section <c>Agent:Inventory</c>. Its keys were once directly under <c>Agent</c> (<c>Agent:ScanInterval</c>, ...):
/// those still work, as aliases read when the new key is not set.
/// </summary>
public sealed record InventorySettings(TimeSpan ScanInterval, int SpoolCapacity, long SpoolMaxEntries)
{
    public const string Section = "Agent:Inventory";
    public static readonly TimeSpan DefaultScanInterval = TimeSpan.FromMinutes(1);
    public const int DefaultSpoolCapacity = 1440;
    public const long DefaultSpoolMaxEntries = 1_000_000;

    public static IReadOnlyList<SettingKey> Keys { get; } =
    [
        new($"{Section}:ScanInterval", "00:01:00", "time between scans (1 s to 1 day)", "Agent:ScanInterval"),
        new($"{Section}:SpoolCapacity", "1440", "scans kept in memory while the database is unreachable", "Agent:SpoolCapacity"),
        new($"{Section}:SpoolMaxEntries", "1000000", "entries of distinct lists kept in memory while the database is unreachable", "Agent:SpoolMaxEntries"),
    ];

    public SpoolLimits SpoolLimits => new(SpoolCapacity, SpoolMaxEntries);

    public static InventorySettings Load(IConfiguration configuration)
    {
        var section = new SettingsSection(configuration, Section);
        return new InventorySettings(
            section.TimeSpan("ScanInterval", DefaultScanInterval, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1), alias: "Agent:ScanInterval"),
            (int)section.Integer("SpoolCapacity", DefaultSpoolCapacity, 1, 1_000_000, alias: "Agent:SpoolCapacity"),
            section.Integer("SpoolMaxEntries", DefaultSpoolMaxEntries, 1, 1_000_000_000, alias: "Agent:SpoolMaxEntries"));
    }
}
