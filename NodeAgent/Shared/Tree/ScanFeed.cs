namespace NodeAgent.Shared.Tree;

/// <summary>
/// Finished walks of the monitored directory, handed from the capability that takes them (the inventory, every scan
/// interval) to those that check themselves against them (file changes reconcile their state with each), so that the
/// tree is walked once per interval and neither capability knows the other. Subscribers are called on the walking
/// thread and must only hand the scan over, never work on it there.
/// </summary>
public sealed class ScanFeed
{
    private readonly Lock _lock = new();
    private Action<ScanResult, DateTimeOffset>[] _subscribers = [];

    public void Subscribe(Action<ScanResult, DateTimeOffset> onScan)
    {
        lock (_lock)
        {
            _subscribers = [.. _subscribers, onScan];
        }
    }

    /// <param name="takenAt">when the walk started: a change after it may or may not be in the scan</param>
    public void Publish(ScanResult scan, DateTimeOffset takenAt)
    {
        foreach (var subscriber in _subscribers)
        {
            subscriber(scan, takenAt);
        }
    }
}
