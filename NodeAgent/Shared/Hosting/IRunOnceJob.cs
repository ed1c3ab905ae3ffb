namespace NodeAgent.Shared.Hosting;

/// <summary>What a capability does when the agent runs once (<c>Agent:RunOnce=true</c>): collect, store, report.</summary>
public interface IRunOnceJob
{
    /// <returns>true when everything it collected was stored</returns>
    Task<bool> RunAsync(CancellationToken cancellationToken);
}
