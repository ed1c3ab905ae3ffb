using System.Text;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Processes;

internal enum ProcessKind
{
    Other,
    Compile,
    Run,
}

/// <summary>
/// Decides which processes are kept and what they are: <c>Include</c> globs on the executable's name (resolved, so
/// <c>/usr/bin/cc</c> linked to <c>gcc-12</c> is <c>gcc-12</c>), or any executable below the monitored directory (a
/// student's own program); then <c>compile</c> or <c>run</c> by the same kind of globs, else <c>other</c>. The source
/// files a process names are its arguments with a source file's extension that are not the value of an option taking
/// one (<c>-o -I -include -D -U -MF -MT</c>), resolved against its working directory; for an interpreter, its script
/// (<c>python3 x.py</c>) or module (<c>python3 -m mod</c>).
/// </summary>
internal sealed class ProcessClassifier(PathGlobs include, PathGlobs compile, PathGlobs run, string mountPath)
{
    // The options named above plus those whose value may look like a source file (cc1's -dumpbase main.c).
    private static readonly HashSet<string> OptionsWithValue =
        ["-o", "-I", "-include", "-D", "-U", "-MF", "-MT", "-MQ", "-x", "-L", "-l", "-isystem", "-iquote", "-dumpbase", "-dumpbase-ext", "-dumpdir", "-auxbase", "-auxbase-strip"];

    private static readonly HashSet<string> SourceExtensions =
        [".c", ".cc", ".cpp", ".cxx", ".c++", ".h", ".hh", ".hpp", ".hxx", ".java", ".rs", ".go", ".py", ".js", ".ts", ".cs", ".s", ".S"];

    private readonly byte[] _mountPrefix = Encoding.UTF8.GetBytes(mountPath.TrimEnd('/') + "/");

    public static readonly IReadOnlyList<string> DefaultInclude =
        ["gcc*", "*-gcc*", "g++*", "*-g++*", "cc", "c++", "cc1*", "clang*", "ld", "as", "python*", "java*", "javac", "node", "make", "cmake", "rustc", "cargo", "go"];

    // Debian's gcc resolves to x86_64-linux-gnu-gcc-12: target-prefixed names are compilers too.
    public static readonly IReadOnlyList<string> DefaultCompile = ["gcc*", "*-gcc*", "g++*", "*-g++*", "cc", "c++", "cc1*", "clang*", "javac", "rustc", "cargo", "go"];

    public static readonly IReadOnlyList<string> DefaultRun = ["python*", "java", "node"];

    /// <summary>
    /// The <c>process_name</c> of a kept process in metrics: the <c>Include</c> entry its executable's name matches
    /// (the name itself for an entry without wildcards), else <c>other</c>. Whoever runs a program chooses its name, so
    /// the name itself would make one series per name; this way there are at most one per entry, plus <c>other</c>.
    /// </summary>
    public string MetricName(ReadOnlySpan<byte> executable)
    {
        var name = Name(executable);
        foreach (var (entry, glob) in _includeEntries)
        {
            if (glob.Matches(name))
            {
                return entry;
            }
        }

        return OtherName;
    }

    public const string OtherName = "other";

    private readonly (string Entry, PathGlobs Glob)[] _includeEntries = [.. include.Patterns.Select(p => (p, PathGlobs.Parse([p])))];

    /// <summary>Whether a process with this executable is kept.</summary>
    public bool Keeps(ReadOnlySpan<byte> executable) =>
        include.Matches(Name(executable)) || IsBelowMount(executable);

    public ProcessKind Classify(ReadOnlySpan<byte> executable)
    {
        var name = Name(executable);
        return compile.Matches(name) ? ProcessKind.Compile
            : run.Matches(name) || IsBelowMount(executable) ? ProcessKind.Run
            : ProcessKind.Other;
    }

    /// <summary>The source files the arguments name, as absolute paths (exact bytes), in the order given.</summary>
    public static List<byte[]> SourceFiles(IReadOnlyList<byte[]> arguments, ProcessKind kind, ReadOnlySpan<byte> executable, ReadOnlySpan<byte> workingDirectory)
    {
        var sources = new List<byte[]>();
        var interpreter = kind == ProcessKind.Run && Name(executable).StartsWith("python"u8);
        for (var i = 1; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            var text = Encoding.UTF8.GetString(argument);
            if (interpreter)
            {
                // python3 [options] script.py | -m module | -c code: what comes first names what runs.
                if (text == "-m" && i + 1 < arguments.Count)
                {
                    sources.Add(arguments[i + 1]);
                    break;
                }

                if (text is "-c")
                {
                    break;
                }

                if (text.StartsWith('-'))
                {
                    continue;
                }

                sources.Add(Resolve(argument, workingDirectory));
                break;
            }

            if (OptionsWithValue.Contains(text))
            {
                i++;
                continue;
            }

            if (text.StartsWith('-'))
            {
                continue;
            }

            var dot = text.LastIndexOf('.');
            if (dot > 0 && SourceExtensions.Contains(text[dot..]) && Resolve(argument, workingDirectory) is var source
                && !sources.Any(s => s.AsSpan().SequenceEqual(source)))
            {
                sources.Add(source);
            }
        }

        return sources;
    }

    private bool IsBelowMount(ReadOnlySpan<byte> executable) => executable.StartsWith(_mountPrefix);

    private static ReadOnlySpan<byte> Name(ReadOnlySpan<byte> path) => path[(path.LastIndexOf((byte)'/') + 1)..];

    private static byte[] Resolve(byte[] path, ReadOnlySpan<byte> workingDirectory) =>
        path is [(byte)'/', ..] || workingDirectory.IsEmpty ? path : [.. workingDirectory, (byte)'/', .. path];
}
