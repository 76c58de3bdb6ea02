using System.Globalization;
using System.Text;
using CfOrch.Core.Instances;
using CfOrch.Core.Supervision;
using Docker.DotNet.Models;

namespace CfOrch.Core.Runtimes.Docker;

/// <summary>One run of a container as cf-orch follows it: which container, since when, its output, whether it is being stopped.</summary>
internal sealed class ContainerRun(InstanceKey key, string id, string name, DateTimeOffset since, bool adopted, LogRing output)
{
    private readonly Lock _lock = new();
    private CancellationTokenSource? _following;

    public InstanceKey Key { get; } = key;

    public string Id { get; } = id;

    public string Name { get; } = name;

    public DateTimeOffset Since { get; } = since;

    /// <summary>Started by the user, not cf-orch: never signalled or removed.</summary>
    public bool Adopted { get; } = adopted;

    public LogRing Output { get; } = output;

    public int? Pid { get; set; }

    /// <summary>cf-orch is stopping it: its exit is not a crash.</summary>
    public volatile bool Stopping;

    /// <summary>Runs <paramref name="follow"/> (once per run) until the run is let go or <paramref name="lifetime"/> ends.</summary>
    public void StartFollowing(Func<CancellationToken, Task> follow, CancellationToken lifetime)
    {
        lock (_lock)
        {
            if (_following is not null)
            {
                return;
            }

            _following = CancellationTokenSource.CreateLinkedTokenSource(lifetime);
        }

        var token = _following.Token;
        _ = Task.Run(() => follow(token), CancellationToken.None);
    }

    public void StopFollowing()
    {
        lock (_lock)
        {
            _following?.Cancel();
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the reporting thread, in order (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>Splits a stream of bytes into lines for a <see cref="LogRing"/>; a line cut between two reads is joined.</summary>
internal sealed class LineSplitter(LogRing ring, LogStream stream)
{
    private const int MaxLine = 16 * 1024;
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder _line = new();

    public void Add(ReadOnlySpan<byte> bytes)
    {
        Span<char> chars = stackalloc char[1024];
        while (!bytes.IsEmpty)
        {
            var take = Math.Min(bytes.Length, 1024);
            var count = _decoder.GetChars(bytes[..take], chars, flush: false);
            bytes = bytes[take..];
            foreach (var c in chars[..count])
            {
                if (c == '\n')
                {
                    Flush();
                }
                else if (c != '\r' && _line.Length < MaxLine)
                {
                    _line.Append(c);
                }
            }
        }
    }

    public void Flush()
    {
        if (_line.Length > 0)
        {
            ring.Append(stream, _line.ToString());
            _line.Clear();
        }
    }
}

/// <summary>A pull's progress from the engine's messages: layers done of all, bytes downloaded of the total known so far.</summary>
internal sealed class PullProgress(string image)
{
    private readonly Dictionary<string, (long Current, long Total, bool Done)> _layers = new(StringComparer.Ordinal);

    /// <summary>How many layers the engine has named so far (none before the manifest is read).</summary>
    public int Layers => _layers.Count;

    public void Apply(JSONMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (string.IsNullOrEmpty(message.ID) || message.Status is null || message.Status.StartsWith("Pulling from", StringComparison.Ordinal))
        {
            return;
        }

        var (current, total, done) = _layers.GetValueOrDefault(message.ID);
        if (message.Progress is { Total: > 0 } p && message.Status == "Downloading")
        {
            (current, total) = (p.Current ?? 0, p.Total ?? 0);
        }

        if (message.Status is "Download complete" or "Pull complete" or "Already exists")
        {
            done = true;
            current = total;
        }

        _layers[message.ID] = (current, total, done);
    }

    public string Describe()
    {
        var done = _layers.Values.Count(l => l.Done);
        var current = _layers.Values.Sum(l => l.Current);
        var total = _layers.Values.Sum(l => l.Total);
        var bytes = total > 0 ? string.Create(CultureInfo.InvariantCulture, $", {Mb(current)} of {Mb(total)}") : "";
        return string.Create(CultureInfo.InvariantCulture, $"pulling {image}: {done} of {_layers.Count} layers{bytes}");
    }

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MB");
}
