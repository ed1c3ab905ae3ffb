namespace NodeAgent.Shared.Configuration;

/// <summary>Configuration the agent cannot start with; the message names the key and is safe to print.</summary>
public sealed class AgentConfigurationException(string message) : Exception(message);
