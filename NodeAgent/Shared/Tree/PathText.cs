using System.Buffers;
using System.Text;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// How a name's bytes become stored text. A valid UTF-8 name is stored as it is. A name that is not
/// valid UTF-8 is stored as text in which every byte that is not part of a valid UTF-8 sequence is
/// written <c>\xHH</c> (two lower-case hex digits), and its exact bytes are stored beside it
/// (<c>path_bytes</c>), so the original name can always be recovered exactly.
/// </summary>
public static class PathText
{
    public static bool IsExact(ReadOnlySpan<byte> name) => System.Text.Unicode.Utf8.IsValid(name);

    public static string ToText(ReadOnlySpan<byte> name)
    {
        if (IsExact(name))
        {
            return Encoding.UTF8.GetString(name);
        }

        var builder = new StringBuilder(name.Length + 16);
        while (!name.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(name, out var rune, out var consumed);
            if (status == OperationStatus.Done)
            {
                builder.Append(rune.ToString());
            }
            else
            {
                for (var i = 0; i < consumed; i++)
                {
                    builder.Append("\\x").Append(name[i].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                }
            }

            name = name[consumed..];
        }

        return builder.ToString();
    }
}
