using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

/// <summary>Section <c>Agent:Changes</c>: what is watched, how bursts are folded, what is hashed and kept.</summary>
internal sealed record ChangesSettings(
    bool Enabled,
    TimeSpan QuietWindow,
    TimeSpan MaxWait,
    long HashMaxBytes,
    long SnapshotMaxBytes,
    PathGlobs SnapshotInclude,
    PathGlobs Exclude,
    int SpoolCapacity,
    long SpoolMaxBytes)
{
    public const string Section = "Agent:Changes";

    public static readonly IReadOnlyList<string> DefaultSnapshotInclude =
        ["*.c", "*.h", "*.cc", "*.cpp", "*.hpp", "*.py", "*.ipynb", "*.java", "*.js", "*.ts", "*.cs", "*.go", "*.rs", "*.sh", "Makefile", "CMakeLists.txt"];

    public static readonly IReadOnlyList<string> DefaultExclude =
        ["**/.git/**", "**/node_modules/**", "**/__pycache__/**", "**/.venv/**", "**/site-packages/**"];

    public static IReadOnlyList<SettingKey> Keys { get; } =
    [
        new($"{Section}:Enabled", "true", "watch the monitored directory for changes (the inventory runs either way)"),
        new($"{Section}:QuietWindow", "00:00:00.1", "a path's changes are folded into one event once it has been quiet this long"),
        new($"{Section}:MaxWait", "00:00:03", "... or once this long has passed since its first change (a file written without pause)"),
        new($"{Section}:HashMaxBytes", "67108864", "files up to this size get a SHA-256; larger ones are marked not hashed"),
        new($"{Section}:SnapshotMaxBytes", "1048576", "changed files up to this size matching SnapshotInclude have their content kept"),
        new($"{Section}:SnapshotInclude", string.Join(',', DefaultSnapshotInclude), "globs (comma-separated) of the files whose content is kept"),
        new($"{Section}:Exclude", string.Join(',', DefaultExclude), "globs (comma-separated) of paths never watched nor reported"),
        new($"{Section}:SpoolCapacity", "100000", "batches of file events kept in memory while the database is unreachable"),
        new($"{Section}:SpoolMaxBytes", "16777216", "memory those batches may hold (events and snapshot contents); at half of it, changed paths wait, folded"),
    ];

    public SpoolLimits SpoolLimits => new(SpoolCapacity, SpoolMaxBytes);

    public static ChangesSettings Load(IConfiguration configuration)
    {
        var section = new SettingsSection(configuration, Section);
        var quiet = section.TimeSpan("QuietWindow", TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        var maxWait = section.TimeSpan("MaxWait", TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10));
        if (maxWait < quiet)
        {
            throw new AgentConfigurationException($"{Section}:MaxWait must not be shorter than {Section}:QuietWindow.");
        }

        var hashMax = section.Integer("HashMaxBytes", 64L << 20, 0, 1L << 40);
        return new ChangesSettings(
            section.Bool("Enabled", true),
            quiet,
            maxWait,
            hashMax,
            section.Integer("SnapshotMaxBytes", 1L << 20, 0, Math.Min(hashMax, 256L << 20)),
            section.Parsed("SnapshotInclude", () => PathGlobs.Parse(section.List("SnapshotInclude", DefaultSnapshotInclude))),
            section.Parsed("Exclude", () => PathGlobs.Parse(section.List("Exclude", DefaultExclude))),
            (int)section.Integer("SpoolCapacity", 100_000, 1, 10_000_000),
            section.Integer("SpoolMaxBytes", 16L << 20, 1L << 20, 64L << 30));
    }
}
