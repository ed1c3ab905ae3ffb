namespace NodeAgent.Shared.Configuration;

/// <summary>The monitored directory itself is missing, not a directory, or unreadable; the message names it.</summary>
public sealed class MountPathException(string message) : Exception(message);
