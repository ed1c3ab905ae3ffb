using System.Buffers;
using System.Text;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// A set of gitignore-like path patterns (which files to snapshot, which directories never to watch), matched on the
/// exact bytes of a relative path: a node's files may have names that are not valid UTF-8, and decoding every path
/// of a large tree only to match it would cost an allocation per path. Patterns are converted to bytes once, at
/// <see cref="Parse"/>; a match allocates nothing and is linear-ish (no regular expressions, no exponential
/// backtracking).
/// </summary>
/// <remarks>
/// <para>
/// A pattern without '/' (<c>*.c</c>, <c>Makefile</c>) matches the last segment of a path, at any depth. A pattern
/// with '/' matches the whole path from the monitored directory, segment by segment (<c>src/*.c</c> matches
/// <c>src/a.c</c>, not <c>lib/src/a.c</c>); a segment that is exactly <c>**</c> matches zero or more segments.
/// </para>
/// <para>
/// Unlike gitignore, a trailing <c>/**</c> also matches the directory itself: <c>**/.git/**</c> matches
/// <c>a/.git</c>, because <c>**</c> may match zero segments. An exclude set then excludes the directory as well as
/// its contents, so a walker neither reports nor watches it (<see cref="ExcludesEverythingBelow"/>).
/// </para>
/// <para>
/// Within a segment, <c>*</c> matches any run of characters and <c>?</c> exactly one character: one UTF-8
/// sequence, or one byte where the bytes are not valid UTF-8 (so a name's characters count as a person sees them,
/// and every name still matches somehow). <c>[abc]</c>, <c>[a-z]</c> and <c>[!x]</c> (or <c>[^x]</c>) match one
/// character against ASCII members; a negated class also matches any non-ASCII character. There are no escapes
/// (a backslash is an ordinary byte) and no named classes like <c>[:alpha:]</c>; <c>[[]</c> matches a literal '['.
/// Matching is case-sensitive and byte-exact, as the file system is.
/// </para>
/// </remarks>
public sealed class PathGlobs
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Pattern[] _compiled;

    private PathGlobs(string[] patterns, Pattern[] compiled)
    {
        Patterns = patterns;
        _compiled = compiled;
    }

    /// <summary>The patterns as given, in order.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>No patterns: nothing matches.</summary>
    public bool IsEmpty => _compiled.Length == 0;

    /// <summary>
    /// Compiles <paramref name="patterns"/>. A pattern that could never match what it seems to mean is refused
    /// rather than silently matching nothing: an empty pattern, a leading or trailing '/', an empty, '.' or '..'
    /// segment, an unclosed or non-ASCII character class, text that is not valid UTF-16.
    /// </summary>
    /// <exception cref="ArgumentException">A pattern is not valid; the message names it.</exception>
    public static PathGlobs Parse(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var texts = new List<string>();
        var compiled = new List<Pattern>();
        foreach (var text in patterns)
        {
            compiled.Add(Pattern.Compile(text, texts.Count));
            texts.Add(text);
        }

        return new PathGlobs([.. texts], [.. compiled]);
    }

    /// <summary>
    /// Whether some pattern matches <paramref name="path"/>: the exact bytes of a path relative to the monitored
    /// directory, segments separated by '/', no leading or trailing '/'; it may contain bytes that are not valid
    /// UTF-8. The empty path (the monitored directory itself) has no last segment, so only a '/' pattern that can
    /// match zero segments matches it.
    /// </summary>
    public bool Matches(ReadOnlySpan<byte> path)
    {
        var name = path[(path.LastIndexOf((byte)'/') + 1)..];
        foreach (var pattern in _compiled)
        {
            if (pattern.IsBasename
                ? !path.IsEmpty && pattern.Segments[0].Matches(name)
                : MatchPath(pattern.Segments, path))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether every path below the directory <paramref name="directoryPath"/> matches, so that a walker can skip the
    /// whole subtree and never watch it: some pattern ends with <c>/**</c> and matches the directory (<c>**/.git/**</c>
    /// and <c>a/.git</c>, or <c>a/.git/hooks</c>), or a pattern is a bare <c>*</c> that matches every name.
    /// A pattern that happens to match the directory's name (<c>*.c</c> and a directory <c>x.c</c>) says nothing
    /// about what is inside it.
    /// </summary>
    public bool ExcludesEverythingBelow(ReadOnlySpan<byte> directoryPath)
    {
        foreach (var pattern in _compiled)
        {
            // Q/** matching the directory d means d is q/s with q matching Q; then ** also covers s/x for any child x.
            if (pattern.IsBasename
                ? pattern.Segments[0].MatchesEveryName
                : pattern.Segments[^1].IsDoubleStar && MatchPath(pattern.Segments, directoryPath))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The two-pointer wildcard algorithm over segments: a segment pattern matches exactly one path segment, and only
    /// the latest <c>**</c> is ever retried, one more segment at a time, so the cost is bounded by segments times
    /// pattern segments, never exponential.
    /// </summary>
    private static bool MatchPath(ReadOnlySpan<Segment> pattern, ReadOnlySpan<byte> path)
    {
        var patternIndex = 0;
        // The start of the next unmatched path segment; past the end once every segment is matched (at once for "").
        var position = path.IsEmpty ? 1 : 0;
        var starIndex = -1;
        var starPosition = 0;
        while (position <= path.Length)
        {
            if (patternIndex < pattern.Length)
            {
                var segment = pattern[patternIndex];
                if (segment.IsDoubleStar)
                {
                    starIndex = patternIndex++;
                    starPosition = position;
                    continue;
                }

                var end = SegmentEnd(path, position);
                if (segment.Matches(path[position..end]))
                {
                    patternIndex++;
                    position = end + 1;
                    continue;
                }
            }

            if (starIndex < 0)
            {
                return false;
            }

            // Let the latest ** take one more segment and match the rest after it again.
            patternIndex = starIndex + 1;
            starPosition = SegmentEnd(path, starPosition) + 1;
            position = starPosition;
        }

        while (patternIndex < pattern.Length && pattern[patternIndex].IsDoubleStar)
        {
            patternIndex++;
        }

        return patternIndex == pattern.Length;
    }

    private static int SegmentEnd(ReadOnlySpan<byte> path, int start)
    {
        var slash = path[start..].IndexOf((byte)'/');
        return slash < 0 ? path.Length : start + slash;
    }

    /// <summary>The length of the character at <paramref name="index"/>: a UTF-8 sequence, or one byte that is not one.</summary>
    private static int CharacterLength(ReadOnlySpan<byte> text, int index)
    {
        if (text[index] < 0x80)
        {
            return 1;
        }

        return Rune.DecodeFromUtf8(text[index..], out _, out var length) == OperationStatus.Done ? length : 1;
    }

    private sealed class Pattern(bool isBasename, Segment[] segments)
    {
        /// <summary>No '/': the only segment matches a path's last segment.</summary>
        public bool IsBasename { get; } = isBasename;

        public Segment[] Segments { get; } = segments;

        public static Pattern Compile(string? text, int index)
        {
            if (text is null)
            {
                throw Invalid($"Path pattern #{index + 1} is null.");
            }

            if (text.Length == 0)
            {
                throw Invalid($"Path pattern #{index + 1} is empty; remove it or give a pattern such as '*.c'.");
            }

            if (text[0] == '/')
            {
                throw Invalid($"Path pattern '{text}' starts with '/': patterns are relative to the monitored directory; write '{text.TrimStart('/')}'.");
            }

            if (text[^1] == '/')
            {
                throw Invalid($"Path pattern '{text}' ends with '/': to match a directory and everything below it write '{text}**'.");
            }

            byte[] bytes;
            try
            {
                bytes = StrictUtf8.GetBytes(text);
            }
            catch (EncoderFallbackException)
            {
                throw Invalid($"Path pattern '{text}' is not valid text (it has an unpaired UTF-16 surrogate).");
            }

            if (bytes.AsSpan().IndexOf((byte)'/') < 0)
            {
                return new Pattern(isBasename: true, [Segment.Compile(bytes, text)]);
            }

            var segments = new List<Segment>();
            var rest = bytes.AsSpan();
            while (true)
            {
                var slash = rest.IndexOf((byte)'/');
                var part = slash < 0 ? rest : rest[..slash];
                if (part.IsEmpty)
                {
                    throw Invalid($"Path pattern '{text}' has an empty segment ('//').");
                }

                if (part.SequenceEqual("."u8) || part.SequenceEqual(".."u8))
                {
                    throw Invalid($"Path pattern '{text}' has a '.' or '..' segment, which no relative path has.");
                }

                if (part.SequenceEqual("**"u8))
                {
                    // **/** is **: consecutive ones would only multiply the retries.
                    if (segments.Count == 0 || !segments[^1].IsDoubleStar)
                    {
                        segments.Add(Segment.DoubleStar);
                    }
                }
                else
                {
                    segments.Add(Segment.Compile(part, text));
                }

                if (slash < 0)
                {
                    break;
                }

                rest = rest[(slash + 1)..];
            }

            return new Pattern(isBasename: false, [.. segments]);
        }
    }

    /// <summary>One segment of a pattern, compiled to tokens; plain names and <c>*suffix</c> take a shortcut.</summary>
    private sealed class Segment
    {
        public static readonly Segment DoubleStar = new([], isDoubleStar: true);

        private readonly Token[] _tokens;
        private readonly byte[]? _literal;
        private readonly byte[]? _suffix;

        private Segment(Token[] tokens, bool isDoubleStar)
        {
            _tokens = tokens;
            IsDoubleStar = isDoubleStar;
            if (!isDoubleStar)
            {
                var literals = tokens.AsSpan(tokens is [{ Kind: TokenKind.Star }, ..] ? 1 : 0);
                var allLiteral = true;
                foreach (var token in literals)
                {
                    allLiteral &= token.Kind == TokenKind.Literal;
                }

                if (allLiteral)
                {
                    var bytes = new byte[literals.Length];
                    for (var i = 0; i < bytes.Length; i++)
                    {
                        bytes[i] = literals[i].Literal;
                    }

                    // A literal after '*' starts a character (patterns are valid UTF-8), so a byte-wise suffix
                    // comparison agrees with '*' stepping over whole characters.
                    if (literals.Length == tokens.Length)
                    {
                        _literal = bytes;
                    }
                    else
                    {
                        _suffix = bytes;
                    }
                }
            }
        }

        /// <summary>A whole segment <c>**</c>: zero or more path segments.</summary>
        public bool IsDoubleStar { get; }

        /// <summary>A bare <c>*</c> (or <c>**</c> without '/'): every name matches.</summary>
        public bool MatchesEveryName => _tokens is [{ Kind: TokenKind.Star }];

        public static Segment Compile(ReadOnlySpan<byte> bytes, string text)
        {
            var tokens = new List<Token>(bytes.Length);
            for (var i = 0; i < bytes.Length;)
            {
                switch (bytes[i])
                {
                    case (byte)'*':
                        if (tokens.Count == 0 || tokens[^1].Kind != TokenKind.Star)
                        {
                            tokens.Add(new Token(TokenKind.Star));
                        }

                        i++;
                        break;
                    case (byte)'?':
                        tokens.Add(new Token(TokenKind.AnyCharacter));
                        i++;
                        break;
                    case (byte)'[':
                        tokens.Add(CompileClass(bytes, ref i, text));
                        break;
                    default:
                        tokens.Add(new Token(TokenKind.Literal, bytes[i]));
                        i++;
                        break;
                }
            }

            return new Segment([.. tokens], isDoubleStar: false);
        }

        public bool Matches(ReadOnlySpan<byte> name)
        {
            if (_literal is not null)
            {
                return name.SequenceEqual(_literal);
            }

            if (_suffix is not null)
            {
                return name.EndsWith(_suffix);
            }

            return MatchTokens(_tokens, name);
        }

        /// <summary>
        /// The classic two-pointer wildcard match: only the latest '*' is retried, one character further each time,
        /// so the cost is at most name length times pattern length (<c>*a*a*a*b</c> against 10,000 'a's included).
        /// </summary>
        private static bool MatchTokens(ReadOnlySpan<Token> pattern, ReadOnlySpan<byte> name)
        {
            var patternIndex = 0;
            var nameIndex = 0;
            var starIndex = -1;
            var starNameIndex = 0;
            while (nameIndex < name.Length)
            {
                if (patternIndex < pattern.Length)
                {
                    ref readonly var token = ref pattern[patternIndex];
                    if (token.Kind == TokenKind.Star)
                    {
                        starIndex = patternIndex++;
                        starNameIndex = nameIndex;
                        continue;
                    }

                    var length = token.MatchLength(name, nameIndex);
                    if (length > 0)
                    {
                        patternIndex++;
                        nameIndex += length;
                        continue;
                    }
                }

                if (starIndex < 0)
                {
                    return false;
                }

                // Whole characters, like '?': a '*' that stopped inside a character would let '?'s after it match
                // the character's continuation bytes one by one.
                patternIndex = starIndex + 1;
                starNameIndex += CharacterLength(name, starNameIndex);
                nameIndex = starNameIndex;
            }

            while (patternIndex < pattern.Length && pattern[patternIndex].Kind == TokenKind.Star)
            {
                patternIndex++;
            }

            return patternIndex == pattern.Length;
        }

        /// <summary>Compiles the class starting at <paramref name="index"/> ('[') into a 128-bit ASCII set.</summary>
        private static Token CompileClass(ReadOnlySpan<byte> bytes, ref int index, string text)
        {
            var i = index + 1;
            var negated = i < bytes.Length && bytes[i] is (byte)'!' or (byte)'^';
            if (negated)
            {
                i++;
            }

            ulong low = 0, high = 0;
            // A ']' right after '[' or '[!' is a member, as in gitignore and the shell.
            for (var first = true; ; first = false)
            {
                if (i >= bytes.Length)
                {
                    throw Invalid($"Path pattern '{text}' has a '[' without a closing ']'; write '[[]' to match a '[' itself.");
                }

                var from = bytes[i];
                if (from == ']' && !first)
                {
                    break;
                }

                var to = from;
                if (i + 2 < bytes.Length && bytes[i + 1] == '-' && bytes[i + 2] != ']')
                {
                    to = bytes[i + 2];
                    i += 3;
                }
                else
                {
                    i++;
                }

                if (from >= 0x80 || to >= 0x80)
                {
                    throw Invalid($"Path pattern '{text}' has a character class with a non-ASCII character; classes take ASCII only (use '?' for any character).");
                }

                if (to < from)
                {
                    throw Invalid($"Path pattern '{text}' has a reversed range '{(char)from}-{(char)to}' in a character class.");
                }

                for (int b = from; b <= to; b++)
                {
                    if (b < 64)
                    {
                        low |= 1UL << b;
                    }
                    else
                    {
                        high |= 1UL << (b - 64);
                    }
                }
            }

            index = i + 1;
            return negated
                ? new Token(TokenKind.Class, 0, ~low, ~high, matchesNonAscii: true)
                : new Token(TokenKind.Class, 0, low, high, matchesNonAscii: false);
        }
    }

    private enum TokenKind : byte
    {
        Literal,
        AnyCharacter,
        Class,
        Star,
    }

    private readonly struct Token(TokenKind kind, byte literal = 0, ulong low = 0, ulong high = 0, bool matchesNonAscii = false)
    {
        public TokenKind Kind { get; } = kind;

        public byte Literal { get; } = literal;

        /// <summary>The bytes this token takes at <paramref name="index"/>; 0 when it does not match there.</summary>
        public int MatchLength(ReadOnlySpan<byte> name, int index)
        {
            var b = name[index];
            switch (Kind)
            {
                case TokenKind.Literal:
                    return b == Literal ? 1 : 0;
                case TokenKind.AnyCharacter:
                    return CharacterLength(name, index);
                case TokenKind.Class:
                    if (b >= 0x80)
                    {
                        return matchesNonAscii ? CharacterLength(name, index) : 0;
                    }

                    return (((b < 64 ? low >> b : high >> (b - 64)) & 1) != 0) ? 1 : 0;
                default:
                    return 0;
            }
        }
    }

    private static ArgumentException Invalid(string message) => new(message);
}
