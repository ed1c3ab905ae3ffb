using System.Text;
using NodeAgent.Processes;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Tests.Processes;

/// <summary>Which processes are kept, what kind they are, and which source files they name.</summary>
public sealed class ProcessClassifierTests
{
    private static readonly ProcessClassifier Defaults = new(
        PathGlobs.Parse(ProcessClassifier.DefaultInclude), PathGlobs.Parse(ProcessClassifier.DefaultCompile), PathGlobs.Parse(ProcessClassifier.DefaultRun), "/mnt/node-data");

    private static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    private static List<string> Sources(string executable, string cwd, params string[] argv) =>
        [.. ProcessClassifier.SourceFiles([.. argv.Select(B)], Defaults.Classify(B(executable)), B(executable), B(cwd)).Select(s => Encoding.UTF8.GetString(s))];

    [Theory]
    [InlineData("/usr/bin/gcc-12", true, "Compile")]
    [InlineData("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", true, "Compile")]
    [InlineData("/opt/homebrew/bin/clang-17", true, "Compile")]
    [InlineData("/usr/bin/python3.11", true, "Run")]
    [InlineData("/usr/lib/jvm/java-17/bin/java", true, "Run")]
    [InlineData("/usr/bin/make", true, "Other")]
    [InlineData("/mnt/node-data/s001/hw1/a.out", true, "Run")]
    [InlineData("/usr/bin/ls", false, "Other")]
    [InlineData("/usr/bin/bash", false, "Other")]
    public void Kept_and_classified_by_the_resolved_executable_not_one_distributions_paths(string executable, bool kept, string kind)
    {
        Assert.Equal(kept, Defaults.Keeps(B(executable)));
        Assert.Equal(kind, Defaults.Classify(B(executable)).ToString());
    }

    [Fact]
    public void Process_name_in_metrics_is_bounded_by_the_include_entries_plus_other_whatever_names_are_run()
    {
        var executables = Enumerable.Range(0, 5_000).SelectMany(i => new[]
        {
            $"/usr/bin/python3.{i}", $"/usr/bin/x86_64-linux-gnu-gcc-{i}", $"/mnt/node-data/s{i}/hw1/prog{i}", $"/tmp/make{i}",
        }).Append("/usr/bin/make").Append("/usr/bin/cc").ToList();

        var names = executables.Where(e => Defaults.Keeps(B(e))).Select(e => Defaults.MetricName(B(e))).ToHashSet();

        Assert.Subset(new HashSet<string>([.. ProcessClassifier.DefaultInclude, ProcessClassifier.OtherName]), names);
        Assert.Equal(["*-gcc*", "cc", "make", "other", "python*"], names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Star_keeps_everything()
    {
        var everything = new ProcessClassifier(PathGlobs.Parse(["*"]), PathGlobs.Parse([]), PathGlobs.Parse([]), "/mnt");
        Assert.True(everything.Keeps(B("/usr/bin/ls")));
    }

    [Fact]
    public void Compiler_sources_are_its_source_arguments_not_option_values_resolved_against_its_cwd()
    {
        var sources = Sources("/usr/bin/gcc-12", "/mnt/node-data/s1/hw2",
            "gcc", "-I", "include.h", "-o", "main.c.out", "-DX=1", "-c", "main.c", "util/helper.c", "/abs/lib.c", "-MF", "deps.d", "-include", "pre.h", "notes.txt");

        Assert.Equal(["/mnt/node-data/s1/hw2/main.c", "/mnt/node-data/s1/hw2/util/helper.c", "/abs/lib.c"], sources);
    }

    [Fact]
    public void Python_names_its_script_or_its_module()
    {
        Assert.Equal(["/home/s/run.py"], Sources("/usr/bin/python3.11", "/home/s", "python3", "-u", "run.py", "arg.py"));
        Assert.Equal(["pkg.main"], Sources("/usr/bin/python3.11", "/home/s", "python3", "-m", "pkg.main", "x.py"));
        Assert.Empty(Sources("/usr/bin/python3.11", "/home/s", "python3", "-c", "import x", "y.py"));
    }
}
