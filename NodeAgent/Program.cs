using Microsoft.Extensions.Diagnostics.HealthChecks;
using NodeAgent.Configuration;
using NodeAgent.Hosting;
using NodeAgent.Inventory;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

const int DefaultPort = 9090;

try
{
    var builder = WebApplication.CreateSlimBuilder(args);
    var settings = AgentSettings.Load(builder.Configuration);

    // The mount path is checked before anything starts: a missing hostPath is the most common mistake.
    TreeScanner.ProbeMountPath(settings.MountPath);

    builder.Logging.AddSimpleConsole(options =>
    {
        options.SingleLine = true;
        options.UseUtcTimestamp = true;
        options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    });
    builder.AddServiceDefaults();
    builder.AddNodeAgent(settings);
    if (!HasConfiguredEndpoints(builder.Configuration))
    {
        builder.WebHost.UseUrls($"http://*:{DefaultPort}");
    }

    var app = builder.Build();
    if (settings.RunOnce)
    {
        // Providers are created on first use; ask for them so the scan's span and metrics are exported, and flushed on dispose.
        _ = app.Services.GetService<TracerProvider>();
        _ = app.Services.GetService<MeterProvider>();
        await using (app)
        {
            return await app.Services.GetRequiredService<RunOnceCommand>().RunAsync(CancellationToken.None);
        }
    }

    app.MapDefaultEndpoints();
    await app.RunAsync();
    return 0;
}
catch (AgentConfigurationException e)
{
    Console.Error.WriteLine($"nodeagent: configuration error: {e.Message}");
    return 2;
}
catch (MountPathException e)
{
    Console.Error.WriteLine($"nodeagent: {e.Message}");
    return 2;
}
catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("bind", StringComparison.OrdinalIgnoreCase))
{
    Console.Error.WriteLine($"nodeagent: cannot listen: {e.Message}");
    return 3;
}

static bool HasConfiguredEndpoints(IConfiguration configuration) =>
    !string.IsNullOrWhiteSpace(configuration["urls"])
    || !string.IsNullOrWhiteSpace(configuration["http_ports"])
    || !string.IsNullOrWhiteSpace(configuration["https_ports"])
    || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
