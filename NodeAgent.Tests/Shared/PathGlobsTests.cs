using System.Text;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// Gitignore-like path patterns matched on the bytes of relative paths: the default exclude and snapshot sets,
/// anchoring, <c>**</c>, characters that are several bytes or not UTF-8 at all, skipping whole subtrees, and the
/// patterns <see cref="PathGlobs.Parse"/> refuses.
/// </summary>
public sealed class PathGlobsTests
{
    private static readonly PathGlobs DefaultExcludes = PathGlobs.Parse(
        ["**/.git/**", "**/node_modules/**", "**/__pycache__/**", "**/.venv/**", "**/site-packages/**"]);

    private static readonly PathGlobs DefaultIncludes = PathGlobs.Parse(
        "*.c *.h *.cc *.cpp *.hpp *.py *.ipynb *.java *.js *.ts *.cs *.go *.rs *.sh Makefile CMakeLists.txt".Split(' '));

    private static PathGlobs Globs(params string[] patterns) => PathGlobs.Parse(patterns);

    private static bool Matches(PathGlobs globs, string path) => globs.Matches(Encoding.UTF8.GetBytes(path));

    private static bool ExcludesBelow(PathGlobs globs, string directory) =>
        globs.ExcludesEverythingBelow(Encoding.UTF8.GetBytes(directory));

    private static string ParseError(params string[] patterns) =>
        Assert.Throws<ArgumentException>(() => PathGlobs.Parse(patterns)).Message;

    // The default exclude set

    [Theory]
    [InlineData(".git")]
    [InlineData(".git/config")]
    [InlineData("a/.git")]
    [InlineData("a/b/.git/x/y")]
    [InlineData("node_modules/react/index.js")]
    [InlineData("web/app/node_modules/x")]
    [InlineData("src/__pycache__/m.cpython-312.pyc")]
    [InlineData(".venv/bin/python")]
    [InlineData("hw2/.venv")]
    [InlineData("lib/python3.12/site-packages/numpy/core.py")]
    public void Default_excludes_match_the_directories_and_everything_below_them(string path) =>
        Assert.True(Matches(DefaultExcludes, path));

    [Theory]
    [InlineData("a/.github/x")]
    [InlineData("gitx/y")]
    [InlineData("a/.gitignore")]
    [InlineData(".git.bak/config")]
    [InlineData("my.git/config")]
    [InlineData("node_modules2/x")]
    [InlineData("a/venv/bin/python")]
    [InlineData("src/pycache/m.pyc")]
    [InlineData("hw1/main.c")]
    [InlineData("")]
    public void Default_excludes_leave_look_alike_names_alone(string path) =>
        Assert.False(Matches(DefaultExcludes, path));

    // The default snapshot set

    [Theory]
    [InlineData("hw1/main.c")]
    [InlineData("hw1/main.cpp")]
    [InlineData("main.c")]
    [InlineData("a/b/c/d/util.h")]
    [InlineData("notebook.ipynb")]
    [InlineData("Makefile")]
    [InlineData("sub/Makefile")]
    [InlineData("proj/CMakeLists.txt")]
    [InlineData("x/run.sh")]
    [InlineData("src/lib.rs")]
    public void Basename_pattern_matches_at_any_depth(string path) =>
        Assert.True(Matches(DefaultIncludes, path));

    [Theory]
    [InlineData("hw1/main.c.orig")]
    [InlineData("Makefile.am")]
    [InlineData("sub/makefile")]
    [InlineData("hw1/MAIN.C")]
    [InlineData("hw1/main.cxx")]
    [InlineData("main.c/notes.txt")]
    [InlineData("cmakelists.txt")]
    [InlineData("")]
    public void Basename_pattern_matches_the_whole_last_segment_case_sensitively(string path) =>
        Assert.False(Matches(DefaultIncludes, path));

    // Anchoring and **

    [Fact]
    public void A_pattern_with_a_slash_is_anchored_at_the_monitored_directory()
    {
        var globs = Globs("src/*.c");

        Assert.True(Matches(globs, "src/a.c"));
        Assert.False(Matches(globs, "lib/src/a.c"));
        Assert.False(Matches(globs, "src/sub/a.c"));
        Assert.False(Matches(globs, "src"));
        Assert.False(Matches(globs, "a.c"));
    }

    [Fact]
    public void Double_star_matches_zero_segments()
    {
        var globs = Globs("**/x.c");

        Assert.True(Matches(globs, "x.c"));
        Assert.True(Matches(globs, "a/x.c"));
        Assert.True(Matches(globs, "a/b/c/x.c"));
        Assert.False(Matches(globs, "a/x.cc"));
    }

    [Fact]
    public void Double_star_in_the_middle_matches_any_number_of_segments()
    {
        var globs = Globs("a/**/b");

        Assert.True(Matches(globs, "a/b"));
        Assert.True(Matches(globs, "a/x/b"));
        Assert.True(Matches(globs, "a/x/y/z/b"));
        Assert.False(Matches(globs, "a/bc"));
        Assert.False(Matches(globs, "x/a/b"));
        Assert.False(Matches(globs, "a/b/c"));
    }

    [Fact]
    public void Double_star_retries_after_a_partial_match()
    {
        var globs = Globs("**/a/b/**/c");

        Assert.True(Matches(globs, "a/a/b/x/a/b/c"));
        Assert.True(Matches(globs, "x/a/x/a/b/c"));
        Assert.False(Matches(globs, "a/x/b/c"));
    }

    [Fact]
    public void Star_and_question_mark_never_cross_a_slash()
    {
        Assert.False(Matches(Globs("x/a*b"), "x/a/b"));
        Assert.False(Matches(Globs("x/a?b"), "x/a/b"));
        Assert.True(Matches(Globs("x/a?b"), "x/a-b"));
        Assert.False(Matches(Globs("*"), ""));
        Assert.True(Matches(Globs("*"), "a/b"));
    }

    [Fact]
    public void Stars_inside_a_segment_are_a_single_star()
    {
        var globs = Globs("src/a**z");

        Assert.True(Matches(globs, "src/az"));
        Assert.True(Matches(globs, "src/abcz"));
        Assert.False(Matches(globs, "src/a/z"));
    }

    // Characters: multi-byte UTF-8, bytes that are not UTF-8, classes

    [Fact]
    public void Question_mark_matches_one_multi_byte_character()
    {
        Assert.True(Matches(Globs("?.c"), "é.c"));
        Assert.True(Matches(Globs("?.py"), "dir/😀.py"));
        Assert.True(Matches(Globs("a?c"), "a中c"));
        Assert.False(Matches(Globs("??.c"), "é.c"));
        Assert.False(Matches(Globs("?.c"), "éé.c"));
    }

    [Fact]
    public void Question_marks_after_a_star_do_not_split_a_character()
    {
        // "😀" is four bytes but one character: '*' stopping after its first byte must not let '???' take the rest.
        Assert.False(Matches(Globs("*???"), "😀"));
        Assert.True(Matches(Globs("*?"), "😀"));
        Assert.True(Matches(Globs("*??"), "a😀"));
        Assert.False(Matches(Globs("*???"), "a😀"));
    }

    [Fact]
    public void Paths_with_bytes_that_are_not_utf8_still_match()
    {
        var globs = Globs("*.c");

        Assert.True(globs.Matches([(byte)'a', (byte)'/', 0xFF, (byte)'.', (byte)'c']));
        Assert.False(globs.Matches([(byte)'a', (byte)'/', 0xFF, (byte)'.', (byte)'h']));
        Assert.True(DefaultExcludes.Matches([0xFE, 0xFF, (byte)'/', .. ".git/config"u8]));
        Assert.True(DefaultIncludes.Matches([0xC3, (byte)'/', .. "main.c"u8]));
    }

    [Fact]
    public void Question_mark_matches_one_invalid_byte_at_a_time()
    {
        Assert.True(Globs("?.c").Matches([0xFF, (byte)'.', (byte)'c']));
        // 0xC3 starts a two-byte sequence, but '(' does not continue it: two characters.
        Assert.True(Globs("??.c").Matches([0xC3, (byte)'(', (byte)'.', (byte)'c']));
        Assert.False(Globs("?.c").Matches([0xC3, (byte)'(', (byte)'.', (byte)'c']));
        // The first three bytes of a four-byte sequence, cut short: three characters.
        Assert.True(Globs("???.c").Matches([0xF0, 0x9F, 0x98, (byte)'.', (byte)'c']));
        Assert.False(Globs("?.c").Matches([0xF0, 0x9F, 0x98, (byte)'.', (byte)'c']));
        Assert.True(Globs("*").Matches([0x80, 0x80]));
    }

    [Fact]
    public void Character_classes_match_one_ascii_character()
    {
        Assert.True(Matches(Globs("[abc].c"), "b.c"));
        Assert.False(Matches(Globs("[abc].c"), "d.c"));
        Assert.True(Matches(Globs("hw[0-9]/*.c"), "hw7/main.c"));
        Assert.False(Matches(Globs("hw[0-9]/*.c"), "hwx/main.c"));
        Assert.True(Matches(Globs("[!x].c"), "y.c"));
        Assert.False(Matches(Globs("[!x].c"), "x.c"));
        Assert.True(Matches(Globs("[^x].c"), "y.c"));
        Assert.True(Matches(Globs("[]a].c"), "].c"));
        Assert.True(Matches(Globs("[[]x"), "[x"));
        Assert.True(Matches(Globs("[a-]"), "-"));
    }

    [Fact]
    public void A_negated_class_matches_a_whole_non_ascii_character()
    {
        Assert.True(Matches(Globs("[!a].c"), "é.c"));
        Assert.False(Matches(Globs("[a-z].c"), "é.c"));
        Assert.True(Globs("[!a].c").Matches([0xFF, (byte)'.', (byte)'c']));
    }

    // Skipping subtrees

    [Theory]
    [InlineData(".git")]
    [InlineData("a/.git")]
    [InlineData("a/.git/hooks")]
    [InlineData("x/y/node_modules")]
    [InlineData("lib/python3.12/site-packages")]
    [InlineData("src/__pycache__")]
    public void Excludes_everything_below_a_directory_a_trailing_double_star_pattern_matches(string directory) =>
        Assert.True(ExcludesBelow(DefaultExcludes, directory));

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("a/.github")]
    [InlineData("gitx")]
    [InlineData(".git.bak")]
    [InlineData("site-packages-old")]
    public void Does_not_exclude_below_a_directory_no_trailing_double_star_pattern_matches(string directory) =>
        Assert.False(ExcludesBelow(DefaultExcludes, directory));

    [Fact]
    public void An_anchored_trailing_double_star_excludes_only_that_directory()
    {
        var globs = Globs("build/**");

        Assert.True(ExcludesBelow(globs, "build"));
        Assert.True(ExcludesBelow(globs, "build/obj"));
        Assert.True(Matches(globs, "build"));
        Assert.True(Matches(globs, "build/obj/a.o"));
        Assert.False(ExcludesBelow(globs, "src/build"));
        Assert.False(ExcludesBelow(globs, "builder"));
    }

    [Fact]
    public void A_pattern_matching_the_directory_name_says_nothing_about_its_contents()
    {
        Assert.True(Matches(DefaultIncludes, "weird.c"));
        Assert.False(ExcludesBelow(DefaultIncludes, "weird.c"));
        Assert.False(ExcludesBelow(Globs("src/*"), "src/a"));
        Assert.False(ExcludesBelow(Globs("**/.git"), "a/.git"));
    }

    [Fact]
    public void A_pattern_matching_everything_excludes_everything_below_every_directory()
    {
        Assert.True(ExcludesBelow(Globs("*"), ""));
        Assert.True(ExcludesBelow(Globs("*"), "a/b"));
        Assert.True(ExcludesBelow(Globs("**/**"), ""));
        Assert.True(ExcludesBelow(Globs("**/**"), "a/b"));
    }

    // The pattern list

    [Fact]
    public void Patterns_are_kept_as_given_and_an_empty_list_matches_nothing()
    {
        Assert.Equal(["**/.git/**", "**/node_modules/**", "**/__pycache__/**", "**/.venv/**", "**/site-packages/**"], DefaultExcludes.Patterns);
        Assert.False(DefaultExcludes.IsEmpty);

        var empty = PathGlobs.Parse([]);
        Assert.True(empty.IsEmpty);
        Assert.Empty(empty.Patterns);
        Assert.False(Matches(empty, "a.c"));
        Assert.False(ExcludesBelow(empty, "a"));
    }

    [Fact]
    public void Parse_refuses_an_empty_pattern_naming_its_position()
    {
        var message = ParseError("*.c", "");
        Assert.Contains("#2", message, StringComparison.Ordinal);
        Assert.Contains("empty", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_refuses_a_pattern_starting_with_a_slash()
    {
        var message = ParseError("*.c", "/src/*.c");
        Assert.Contains("'/src/*.c'", message, StringComparison.Ordinal);
        Assert.Contains("starts with '/'", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("build/", "ends with '/'")]
    [InlineData("a//b", "empty segment")]
    [InlineData("./a.c", "'.' or '..'")]
    [InlineData("a/../b", "'.' or '..'")]
    [InlineData("[abc.c", "without a closing ']'")]
    [InlineData("[é].c", "non-ASCII")]
    [InlineData("[z-a].c", "reversed range")]
    public void Parse_refuses_patterns_that_could_not_mean_what_they_say(string pattern, string reason)
    {
        var message = ParseError(pattern);
        Assert.Contains($"'{pattern}'", message, StringComparison.Ordinal);
        Assert.Contains(reason, message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_refuses_a_pattern_with_an_unpaired_surrogate()
    {
        Assert.Contains("not valid text", ParseError("a\ud800.c"), StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_refuses_a_null_list_and_a_null_pattern()
    {
        Assert.Throws<ArgumentNullException>(() => PathGlobs.Parse(null!));
        Assert.Contains("#1", ParseError([null!]), StringComparison.Ordinal);
    }

    // Cost

    [Fact]
    public void Pathological_patterns_finish_on_long_paths()
    {
        var aaa = new string('a', 10_000);
        Assert.False(Matches(Globs("*a*a*a*a*a*a*b"), aaa));
        Assert.True(Matches(Globs("*a*a*a*a*a*a*a"), aaa));
        Assert.False(Matches(Globs("?*?*?*?*?*?*b"), aaa));

        var deep = string.Join('/', Enumerable.Repeat("a", 5_000));
        Assert.False(Matches(Globs("**/a/**/a/**/a/**/a/**/b"), deep));
        Assert.True(Matches(Globs("**/a/**/a/**/a/**/a/**/a"), deep));
        Assert.False(ExcludesBelow(Globs("**/a/**/a/**/a/**/b/**"), deep));
        Assert.False(Matches(Globs("**/*a*a*a*b/**/a"), deep + "/" + aaa));
    }
}
