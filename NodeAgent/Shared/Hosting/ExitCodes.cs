using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Hosting;

/// <summary>The agent's exit codes, and the one line it prints for what stopped it.</summary>
public static class ExitCodes
{
    /// <summary>Stopped normally; or, when run once, everything was stored.</summary>
    public const int Success = 0;

    /// <summary>Run once and something could not be stored; or an unexpected error.</summary>
    public const int Failed = 1;

    /// <summary>Bad configuration (a port already in use included), or a monitored directory that cannot be opened.</summary>
    public const int Configuration = 2;

    /// <summary>Maps what stopped the agent at start or while running to its exit code and one line for stderr.</summary>
    public static (int Code, string Message) For(Exception e) => e switch
    {
        AgentConfigurationException => (Configuration, $"nodeagent: configuration error: {e.Message}"),
        MountPathException => (Configuration, $"nodeagent: {e.Message}"),
        // Kestrel's "Failed to bind to address http://...: address already in use."
        IOException when e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException or System.Net.Sockets.SocketException
            || e.Message.Contains("bind", StringComparison.OrdinalIgnoreCase)
            => (Configuration, $"nodeagent: configuration error: urls (ASPNETCORE_URLS, HTTP_PORTS; default http://*:{AgentHost.DefaultPort}): {e.Message}"),
        _ => (Failed, $"nodeagent: stopped by an unexpected error: {e.GetType().Name}: {e.Message}"),
    };
}
