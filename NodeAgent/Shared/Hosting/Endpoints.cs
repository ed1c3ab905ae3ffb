using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Hosting;

/// <summary>Where the long-running agent serves /metrics, /health and /alive: checked at start like every other setting.</summary>
internal static class Endpoints
{
    /// <summary>Whether anything chose the endpoints (else the agent listens on <see cref="AgentHost.DefaultPort"/>).</summary>
    public static bool AreConfigured(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["urls"])
        || !string.IsNullOrWhiteSpace(configuration["http_ports"])
        || !string.IsNullOrWhiteSpace(configuration["https_ports"])
        || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();

    /// <exception cref="AgentConfigurationException">a URL or port that Kestrel would refuse, naming its key</exception>
    public static void Validate(IConfiguration configuration)
    {
        foreach (var key in new[] { "urls", "ASPNETCORE_URLS" })
        {
            foreach (var url in Split(configuration[key]))
            {
                try
                {
                    var address = BindingAddress.Parse(url);
                    if (!address.IsUnixPipe && address.Port is < 0 or > 65535)
                    {
                        throw new FormatException();
                    }
                }
                catch (FormatException)
                {
                    throw new AgentConfigurationException($"{key} '{configuration[key]}': '{url}' is not a URL to listen on (e.g. http://*:9090).");
                }
            }
        }

        foreach (var key in new[] { "HTTP_PORTS", "HTTPS_PORTS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS" })
        {
            foreach (var port in Split(configuration[key]))
            {
                if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is < 1 or > 65535)
                {
                    throw new AgentConfigurationException($"{key} '{configuration[key]}': '{port}' is not a TCP port.");
                }
            }
        }
    }

    private static string[] Split(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
