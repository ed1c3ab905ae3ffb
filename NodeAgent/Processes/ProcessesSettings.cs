using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Processes;

/// <summary>Section <c>Agent:Processes</c>: which processes are kept and how they are classified.</summary>
internal sealed record ProcessesSettings(
    bool Enabled,
    PathGlobs Include,
    PathGlobs Compile,
    PathGlobs Run,
    int ArgvMaxBytes,
    int ReceiveBufferBytes,
    int SpoolCapacity,
    long SpoolMaxBytes)
{
    public const string Section = "Agent:Processes";

    public static IReadOnlyList<SettingKey> Keys { get; } =
    [
        new($"{Section}:Enabled", "true", "record process activity from the kernel's process-event connector (needs the host PID namespace and CAP_NET_ADMIN)"),
        new($"{Section}:Include", string.Join(',', ProcessClassifier.DefaultInclude), "globs (comma-separated) on the executable's name of the processes kept ('*': all); executables below Agent:MountPath are always kept"),
        new($"{Section}:Compile", string.Join(',', ProcessClassifier.DefaultCompile), "globs on the executable's name of the processes classified as compile"),
        new($"{Section}:Run", string.Join(',', ProcessClassifier.DefaultRun), "globs on the executable's name of the processes classified as run (and executables below Agent:MountPath)"),
        new($"{Section}:ArgvMaxBytes", "32768", "arguments kept per process; longer ones are cut and flagged"),
        new($"{Section}:ReceiveBufferBytes", "8388608", "the connector socket's receive buffer (a burst of processes waits there)"),
        new($"{Section}:SpoolCapacity", "100000", "batches of process events kept in memory while the database is unreachable"),
        new($"{Section}:SpoolMaxBytes", "16777216", "memory those batches may hold"),
    ];

    public SpoolLimits SpoolLimits => new(SpoolCapacity, SpoolMaxBytes);

    public static ProcessesSettings Load(IConfiguration configuration)
    {
        var section = new SettingsSection(configuration, Section);
        return new ProcessesSettings(
            section.Bool("Enabled", true),
            section.Parsed("Include", () => PathGlobs.Parse(section.List("Include", ProcessClassifier.DefaultInclude))),
            section.Parsed("Compile", () => PathGlobs.Parse(section.List("Compile", ProcessClassifier.DefaultCompile))),
            section.Parsed("Run", () => PathGlobs.Parse(section.List("Run", ProcessClassifier.DefaultRun))),
            (int)section.Integer("ArgvMaxBytes", 32 * 1024, 256, 2 * 1024 * 1024),
            (int)section.Integer("ReceiveBufferBytes", 8 << 20, 64 * 1024, 1 << 30),
            (int)section.Integer("SpoolCapacity", 100_000, 1, 10_000_000),
            section.Integer("SpoolMaxBytes", 16L << 20, 1L << 20, 64L << 30));
    }
}
