using System.Net.Sockets;
using System.Runtime.CompilerServices;
using CfOrch.Core.Configuration;
using CfOrch.Core.Profiles;
using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CfOrch.Core.Runtimes.Docker;

/// <summary>
/// The Docker engine cf-orch talks to (<c>CfOrch:Docker:Endpoint</c>, else <c>DOCKER_HOST</c>, else the local socket):
/// one client, unversioned requests (so Debian 12's engine, API 1.41, and current engines both answer), and whether it
/// answers now — when not, why, in words a user can act on.
/// </summary>
public sealed partial class DockerEngine : IDisposable
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the engine's system info, and the inspection of the profile's images, may each take. Only the ping says
    /// whether the engine answers: a slower answer to these keeps what was known of them.
    /// </summary>
    internal static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(30);

    private readonly ILogger<DockerEngine> _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private DockerClient? _client;
    private RuntimeStatus _status;
    private readonly string? _socketPath;

    // Checks of the images: each is numbered as it starts, and only a check newer than the one MissingImages holds is
    // recorded (an older one that ends later does not overwrite it). Background checks run one at a time (_imagesRunning);
    // asked for meanwhile, one more runs after it (_imagesAgain).
    private long _imageChecks;
    private long _imagesFrom;
    private bool _imagesRunning;
    private bool _imagesAgain;

    public DockerEngine(IOptions<CfOrchOptions> options, ILogger<DockerEngine> logger, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _logger = logger;
        _time = time;
        Endpoint = options.Value.Docker.ResolvedEndpoint();
        _socketPath = Endpoint.StartsWith("unix://", StringComparison.Ordinal) && Uri.TryCreate(Endpoint, UriKind.Absolute, out var socket) ? socket.LocalPath : null;
        var problem = DockerOptions.EndpointProblem(Endpoint);
        _status = new RuntimeStatus(DockerSpec.TypeName, false, problem is null
            ? $"the Docker engine at {Endpoint} has not been reached yet"
            : $"Docker endpoint {problem}");
        if (problem is null)
        {
            _client = new DockerClientBuilder().WithEndpoint(new Uri(Endpoint)).Build();
        }
    }

    /// <summary>Where the engine is expected: <c>unix:///var/run/docker.sock</c>.</summary>
    public string Endpoint { get; }

    public RuntimeStatus Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    public event Action<RuntimeStatus>? StatusChanged;

    /// <summary>The client; throws <see cref="DockerUnavailableException"/> when the endpoint cannot be used at all.</summary>
    public IDockerClient Client => _client ?? throw new DockerUnavailableException(Status.Problem ?? "no Docker endpoint");

    /// <summary>
    /// Asks the engine whether it answers (a ping, within <see cref="PingTimeout"/>), then which container runtimes it has
    /// and which of <paramref name="images"/> it lacks (each within <see cref="QueryTimeout"/>; when either fails, what was
    /// known of it stays); records the answer and returns whether it answers.
    /// </summary>
    public async Task<bool> CheckAsync(IReadOnlyCollection<string> images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (_client is null)
        {
            return false;
        }

        // No socket at all (no Docker on this machine, the common case): one stat, not a request that fails through
        // every layer of the HTTP client every few seconds.
        if (_socketPath is not null && !File.Exists(_socketPath))
        {
            Set(false, Unreachable(NoSocket));
            return false;
        }

        using (var timeout = new CancellationTokenSource(PingTimeout, _time))
        using (var ping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token))
        {
            try
            {
                await _client.System.PingAsync(ping.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && IsUnreachable(ex, timeout.IsCancellationRequested))
            {
                Failed(ex);
                return false;
            }
        }

        var runtimes = await QueryAsync("the engine's system info", c => RuntimesAsync(_client, c), cancellationToken);
        var check = Interlocked.Increment(ref _imageChecks);
        var missing = await QueryAsync("which images the engine has", c => MissingAsync(_client, images, c), cancellationToken);
        Set(s => WithImages(s with { Available = true, Problem = null, EngineRuntimes = runtimes is { } r ? r.Value : s.EngineRuntimes }, check, missing));
        return true;
    }

    /// <summary>
    /// Checks again, in the background, which images the engine lacks (an image was pulled, loaded, tagged or removed;
    /// another profile): one check at a time, within <see cref="QueryTimeout"/>; asked for while one runs, one more runs
    /// after it, with <paramref name="images"/> as they are then. Nothing when the engine does not answer.
    /// </summary>
    public void CheckImagesSoon(Func<IReadOnlyCollection<string>> images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        lock (_lock)
        {
            if (_imagesRunning)
            {
                _imagesAgain = true;
                return;
            }

            _imagesRunning = true;
        }

        _ = Task.Run(() => CheckImagesUntilAskedNoMoreAsync(images, cancellationToken), CancellationToken.None);
    }

    private async Task CheckImagesUntilAskedNoMoreAsync(Func<IReadOnlyCollection<string>> images, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await CheckImagesAsync(images(), cancellationToken);
            }
            catch (Exception ex)
            {
                // cf-orch is stopping, or the profile could not be read: the next check of the engine reads the images again.
                LogQueryFailed("which images the engine has", ex.Message);
            }

            lock (_lock)
            {
                if (!_imagesAgain || cancellationToken.IsCancellationRequested)
                {
                    _imagesRunning = false;
                    return;
                }

                _imagesAgain = false;
            }
        }
    }

    /// <summary>Checks again which of <paramref name="images"/> the engine lacks; nothing when it does not answer, and what was known stays when the check fails.</summary>
    public async Task CheckImagesAsync(IReadOnlyCollection<string> images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (_client is null || !Status.Available)
        {
            return;
        }

        var check = Interlocked.Increment(ref _imageChecks);
        var missing = await QueryAsync("which images the engine has", c => MissingAsync(_client, images, c), cancellationToken);
        Set(s => s.Available ? WithImages(s, check, missing) : s);
    }

    /// <summary><paramref name="status"/> with the images check <paramref name="check"/> found missing, unless it failed or a newer check is recorded.</summary>
    private RuntimeStatus WithImages(RuntimeStatus status, long check, StrongBox<string[]>? missing)
    {
        if (missing is not { Value: { } found } || check < _imagesFrom)
        {
            return status;
        }

        _imagesFrom = check;
        return status with { MissingImages = found };
    }

    /// <summary>
    /// One query of the engine within <see cref="QueryTimeout"/>: its answer, or null when it failed (slow, refused, cut
    /// off) — what was known stays. Cancelled with <paramref name="cancellationToken"/>.
    /// </summary>
    private async Task<StrongBox<T>?> QueryAsync<T>(string what, Func<CancellationToken, Task<T>> query, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(QueryTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            return new StrongBox<T>(await query(linked.Token));
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && (ex is DockerApiException || IsUnreachable(ex, timeout.IsCancellationRequested)))
        {
            LogQueryFailed(what, timeout.IsCancellationRequested ? $"no answer within {QueryTimeout.TotalSeconds:0} s" : ex.Message);
            return null;
        }
    }

    /// <summary>What a start just learnt of an image: the engine has it (inspected, pulled) or not.</summary>
    public void ImageSeen(string image, bool present)
    {
        ArgumentNullException.ThrowIfNull(image);
        Set(s =>
        {
            var others = s.MissingImages.Where(i => i != image);
            return s with { MissingImages = (present ? others : others.Append(image)).Order(StringComparer.Ordinal).ToArray() };
        });
    }

    /// <summary>The engine's container runtimes (<c>runc</c>, <c>nvidia</c> with the NVIDIA Container Toolkit), sorted; null when it does not say.</summary>
    private static async Task<string[]?> RuntimesAsync(DockerClient client, CancellationToken cancellationToken)
    {
        var info = await client.System.GetSystemInfoAsync(cancellationToken);
        return info.Runtimes is { } runtimes ? [.. runtimes.Keys.Order(StringComparer.Ordinal)] : null;
    }

    /// <summary>The images the engine does not have, sorted; one it cannot tell about (an error other than not found) is not counted as missing.</summary>
    private static async Task<string[]> MissingAsync(DockerClient client, IReadOnlyCollection<string> images, CancellationToken cancellationToken)
    {
        var missing = new List<string>();
        foreach (var image in images.Distinct(StringComparer.Ordinal))
        {
            try
            {
                if (!await HasImageAsync(client, image, cancellationToken))
                {
                    missing.Add(image);
                }
            }
            catch (DockerApiException)
            {
                // Not known either way: not counted as missing.
            }
        }

        missing.Sort(StringComparer.Ordinal);
        return [.. missing];
    }

    /// <summary>Whether the engine has <paramref name="image"/> (inspected); any other error of the engine is thrown.</summary>
    public Task<bool> HasImageAsync(string image, CancellationToken cancellationToken) => HasImageAsync(Client, image, cancellationToken);

    private static async Task<bool> HasImageAsync(IDockerClient client, string image, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        try
        {
            await client.Images.InspectImageAsync(image, cancellationToken);
            return true;
        }
        catch (DockerImageNotFoundException)
        {
            return false;
        }
        catch (DockerApiException ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>A call failed because the engine cannot be reached: records why (a refusal by a reachable engine is not that).</summary>
    public void Failed(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Set(false, Describe(exception));
    }

    /// <summary>Whether <paramref name="exception"/> means the engine cannot be reached (rather than that it answered no).</summary>
    public static bool IsUnreachable(Exception exception, bool timedOut = false) =>
        timedOut || exception is DockerUnavailableException || Find<SocketException>(exception) is not null || Find<HttpRequestException>(exception) is not null
        || Find<IOException>(exception) is not null || exception is TimeoutException;

    /// <summary>Why the engine cannot be reached, as a user would want to read it.</summary>
    public string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var socketPath = _socketPath;
        var why = Find<SocketException>(exception) switch
        {
            { SocketErrorCode: SocketError.AccessDenied } when socketPath is not null =>
                $"permission denied on {socketPath} — add the user to the docker group or mount the socket",
            { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
            { SocketErrorCode: SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported } when socketPath is not null && !File.Exists(socketPath) =>
                NoSocket,
            { } socket => socket.Message,
            null when exception is OperationCanceledException or TimeoutException => $"it did not answer within {PingTimeout.TotalSeconds:0} s",
            null when exception is DockerUnavailableException => exception.Message,
            null => (Find<HttpRequestException>(exception) ?? Find<IOException>(exception) ?? exception).Message,
        };
        return Unreachable(why);
    }

    private string Unreachable(string why) => $"Docker engine not reachable at {Endpoint}: {why}";

    private string NoSocket => $"no socket at {_socketPath} (is dockerd running?)";

    /// <summary>What a refusing engine said: the <c>message</c> of its JSON answer, without the client's wrapping.</summary>
    public static string EngineMessage(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is DockerApiException api)
        {
            var body = api.ResponseBody ?? "";
            try
            {
                using var json = System.Text.Json.JsonDocument.Parse(body);
                if (json.RootElement.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text)
                {
                    return text.Trim();
                }
            }
            catch (System.Text.Json.JsonException)
            {
            }

            return body.Trim().Length > 0 ? body.Trim() : $"the engine answered {(int)api.StatusCode}";
        }

        return exception.Message;
    }

    private void Set(bool available, string? problem) => Set(s => s with { Available = available, Problem = problem });

    private void Set(Func<RuntimeStatus, RuntimeStatus> change)
    {
        RuntimeStatus previous, next;
        lock (_lock)
        {
            previous = _status;
            next = change(previous);
            if (next.Equals(previous))
            {
                return;
            }

            _status = next;
        }

        if (next.Available != previous.Available || next.Problem != previous.Problem)
        {
            if (next.Available)
            {
                LogReachable(Endpoint);
            }
            else
            {
                LogUnreachable(next.Problem ?? "");
            }
        }

        StatusChanged?.Invoke(next);
    }

    private static T? Find<T>(Exception? exception)
        where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }

            if (e is AggregateException { InnerExceptions.Count: > 0 } aggregate && Find<T>(aggregate.InnerExceptions[0]) is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    public void Dispose() => _client?.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Docker engine at {Endpoint} answers")]
    private partial void LogReachable(string endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Problem}; containers cannot be started until it answers")]
    private partial void LogUnreachable(string problem);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Asking the Docker engine {What} failed ({Message}); what was known of it stays")]
    private partial void LogQueryFailed(string what, string message);
}

/// <summary>The Docker engine cannot be used (no endpoint, not reachable); the message says why.</summary>
public sealed class DockerUnavailableException : Exception
{
    public DockerUnavailableException()
    {
    }

    public DockerUnavailableException(string message)
        : base(message)
    {
    }

    public DockerUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
