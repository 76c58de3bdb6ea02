using System.Text;

namespace CfOrch.Core.Supervision;

/// <summary>
/// Follows a log file a service appends to, line by line into a <see cref="LogRing"/>. Keeps the file bounded: past
/// <see cref="MaxBytes"/> it is emptied (the service's O_APPEND writes carry on at the new end).
/// </summary>
internal sealed class LogFileTail(string path, LogStream stream, Action<LogStream, string> onLine)
{
    public const long MaxBytes = 8 * 1024 * 1024;
    private const int MaxLineLength = 16 * 1024;

    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder _partial = new();
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly char[] _chars = new char[Encoding.UTF8.GetMaxCharCount(64 * 1024)];
    private long _offset;

    public string Path { get; } = path;

    /// <summary>Starts from the end of the last <paramref name="bytes"/> of the file (for a process re-attached to).</summary>
    public void SkipToLast(long bytes)
    {
        try
        {
            var length = new FileInfo(Path).Length;
            _offset = Math.Max(0, length - bytes);
            if (_offset > 0)
            {
                // Mid-line: that first partial line is dropped.
                _partial.Append('\u0000');
            }
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// Reads what was appended since the last call; with <paramref name="final"/>, a last line without newline too.
    /// True when something was read.
    /// </summary>
    public bool Poll(bool final = false)
    {
        var readAny = false;
        try
        {
            using var file = new FileStream(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            if (file.Length < _offset)
            {
                _offset = 0;
            }

            file.Position = _offset;
            int read;
            while ((read = file.Read(_buffer, 0, _buffer.Length)) > 0)
            {
                readAny = true;
                _offset += read;
                var count = _decoder.GetChars(_buffer, 0, read, _chars, 0);
                Split(_chars.AsSpan(0, count));
            }

            if (_offset > MaxBytes)
            {
                file.SetLength(0);
                _offset = 0;
            }
        }
        catch (FileNotFoundException)
        {
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException)
        {
        }

        if (final && _partial.Length > 0)
        {
            Emit();
        }

        return readAny;
    }

    private void Split(ReadOnlySpan<char> chars)
    {
        while (chars.Length > 0)
        {
            var newline = chars.IndexOf('\n');
            if (newline < 0)
            {
                Append(chars);
                return;
            }

            Append(chars[..newline]);
            Emit();
            chars = chars[(newline + 1)..];
        }
    }

    private void Append(ReadOnlySpan<char> chars)
    {
        var room = MaxLineLength + 1 - _partial.Length;
        if (room > 0)
        {
            _partial.Append(chars[..Math.Min(room, chars.Length)]);
        }
    }

    private void Emit()
    {
        if (_partial.Length > 0 && _partial[0] == '\u0000')
        {
            _partial.Clear();
            return;
        }

        if (_partial.Length > 0 && _partial[^1] == '\r')
        {
            _partial.Length--;
        }

        var text = _partial.Length > MaxLineLength ? string.Concat(_partial.ToString(0, MaxLineLength), "…") : _partial.ToString();
        _partial.Clear();
        onLine(stream, text);
    }
}
