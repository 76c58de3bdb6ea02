using System.Text.Json;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Security;

/// <summary>
/// Checks a JSON body before it is bound, in one pass of the reader: a key given twice in one object
/// (<c>{"mb": -5, "mb": 10}</c>: which one counts depends on the reader, so neither does) and a control character in a
/// text value (names, holders, callers, models) are refused with 400. A password may hold any character.
/// Malformed JSON is left to the binder, whose message says where.
/// </summary>
public static class JsonBodyCheck
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 32 };

    public static void Check(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, ReaderOptions);
        var keys = new Stack<HashSet<string>>();
        var path = new Stack<string>();
        string? property = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        // Case-insensitive, as the binder is: {"mb": 1, "MB": 2} names one key twice.
                        keys.Push(new HashSet<string>(StringComparer.OrdinalIgnoreCase));
                        path.Push(property ?? "");
                        property = null;
                        break;
                    case JsonTokenType.EndObject:
                        keys.Pop();
                        path.Pop();
                        break;
                    case JsonTokenType.StartArray:
                        path.Push(property ?? "");
                        property = null;
                        break;
                    case JsonTokenType.EndArray:
                        path.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        property = reader.GetString()!;
                        CheckText(property, "the key", path, property, body, reader.TokenStartIndex);
                        if (!keys.Peek().Add(property))
                        {
                            throw new ApiException(StatusCodes.Status400BadRequest,
                                $"the key '{Where(path, property)}' is given twice ({Locate(body, reader.TokenStartIndex)}); each key may appear once");
                        }

                        continue;
                    case JsonTokenType.String when MayHoldControlCharacter(reader) && !string.Equals(property, "password", StringComparison.OrdinalIgnoreCase):
                        CheckText(reader.GetString()!, "the value of", path, property ?? "[]", body, reader.TokenStartIndex);
                        break;
                    default:
                        break;
                }

                if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
                {
                    property = null;
                }
            }
        }
        catch (JsonException)
        {
            // Malformed: the binder reports it with its position.
        }
        catch (InvalidOperationException)
        {
            // A string the reader cannot transcode: the binder reports it.
        }
    }

    /// <summary>
    /// Whether a string value can hold a control character at all: JSON carries C0 characters only escaped, and DEL and
    /// the C1 range are a byte 0x7F or non-ASCII. Plain printable ASCII (nearly every value) is passed without decoding.
    /// </summary>
    private static bool MayHoldControlCharacter(in Utf8JsonReader reader) =>
        reader.ValueIsEscaped || reader.HasValueSequence || !System.Text.Ascii.IsValid(reader.ValueSpan) || reader.ValueSpan.Contains((byte)0x7F);

    // Where and at are worked out only for a refusal: for every key and value of a 64 KiB body they would cost
    // quadratic time (each line count starts at the body's first byte).
    private static void CheckText(string text, string what, Stack<string> path, string key, ReadOnlySpan<byte> body, long offset)
    {
        if (ControlCharacters.IndexIn(text) is var i and >= 0)
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{what} '{Where(path, key)}' holds {ControlCharacters.Describe(text, i)} ({Locate(body, offset)}); names, holders and callers are printable text");
        }
    }

    /// <summary>"line 1, position 12" of a byte offset (1-based, as the binder's messages count).</summary>
    private static string Locate(ReadOnlySpan<byte> body, long offset)
    {
        var before = body[..(int)Math.Min(offset, body.Length)];
        var line = before.Count((byte)'\n') + 1;
        var column = before.Length - before.LastIndexOf((byte)'\n');
        return $"line {line}, position {column}";
    }

    private static string Where(Stack<string> path, string key) =>
        string.Join('.', path.Reverse().Where(p => p.Length > 0).Append(key));
}
