namespace CfOrch.Core.History;

/// <summary>Which lease history to read: every field optional; times are Unix milliseconds, until exclusive.</summary>
public sealed record HistoryFilter(string? Service = null, int? GpuIndex = null, string? Kind = null, long? SinceUnixMs = null, long? UntilUnixMs = null);

/// <summary>One recorded lease event (a grant, release, expiry, eviction …) as the History page and the API show it.</summary>
public sealed record LeaseEventRecord(
    long AtUnixMs, string Kind, string? LeaseId, string NodeId, int GpuIndex, string? Service, string Holder, string Origin,
    long BudgetMb, long? MeasuredMb, string Reason, long? GrantedAtUnixMs);

/// <summary>One GPU sample of the charts (at most one per GPU per chart bucket: the largest figures of its samples).</summary>
public sealed record GpuSampleRecord(
    string NodeId, int GpuIndex, string GpuName, long AtUnixMs, long TotalMb, long UsedMb, int? UtilizationPercent, int? TemperatureC,
    long? CommittedMb, long? MeasuredMb);

/// <summary>
/// What was recorded: the seam between the pages and API that show history and the store that keeps it (SQLite, in
/// the Web project), so that nothing above it knows how history is stored.
/// </summary>
public interface IHistoryReader
{
    /// <summary>Raised (on a background thread) when new rows are stored: an open History page reloads exactly then.</summary>
    event Action? Written;

    /// <summary>One page of lease events, newest first, and how many match in all.</summary>
    Task<(int Total, IReadOnlyList<LeaseEventRecord> Events)> LeaseEventsAsync(HistoryFilter filter, int page, int pageSize, CancellationToken cancellationToken);

    /// <summary>GPU samples since a time, oldest first, at most one per GPU per <paramref name="bucketMs"/>.</summary>
    Task<IReadOnlyList<GpuSampleRecord>> SamplesAsync(long sinceUnixMs, int? gpuIndex, long bucketMs, CancellationToken cancellationToken);

    /// <summary>The services and holders that appear in the history (for the filter).</summary>
    Task<IReadOnlyList<string>> HoldersAsync(CancellationToken cancellationToken);
}
