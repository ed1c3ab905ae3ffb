using NodeAgent.Configuration;
using NodeAgent.Hosting;
using NodeAgent.Inventory;

try
{
    // A run-once agent is a plain host with only what it uses (no web server, no file watchers),
    // so that a one-shot scan starts and exits fast and small.
    var oneShot = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
    {
        Args = args,
        ContentRootPath = AppContext.BaseDirectory,
        EnvironmentName = Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT") ?? Environments.Production,
    });
    oneShot.Configuration
        .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
        .AddJsonFile($"appsettings.{oneShot.Environment.EnvironmentName}.json", optional: true, reloadOnChange: false)
        .AddEnvironmentVariables()
        .AddCommandLine(args);
    var settings = AgentSettings.Load(oneShot.Configuration);

    // A missing hostPath is the most common deployment mistake: say so before anything starts.
    TreeScanner.ProbeMountPath(settings.MountPath);

    if (settings.RunOnce)
    {
        oneShot.Logging.AddConfiguration(oneShot.Configuration.GetSection("Logging"));
        ConfigureLogging(oneShot.Logging);
        oneShot.AddNodeAgent(settings);
        using var host = oneShot.Build();
        await host.StartAsync();
        var exitCode = await host.Services.GetRequiredService<RunOnceCommand>().RunAsync(host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        await host.StopAsync();
        return exitCode;
    }

    var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    ConfigureLogging(builder.Logging);
    builder.AddServiceDefaults();
    builder.AddNodeAgent(settings);
    if (!HasConfiguredEndpoints(builder.Configuration))
    {
        builder.WebHost.UseUrls($"http://*:{AgentComposition.DefaultPort}");
    }

    var app = builder.Build();
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
catch (Exception e)
{
    // Whatever else stops the agent: one line, the kind of failure and its message.
    Console.Error.WriteLine($"nodeagent: stopped by an unexpected error: {e.GetType().Name}: {e.Message}");
    return 1;
}

static void ConfigureLogging(ILoggingBuilder logging) => logging.AddSimpleConsole(options =>
{
    options.SingleLine = true;
    options.UseUtcTimestamp = true;
    options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
});

static bool HasConfiguredEndpoints(IConfiguration configuration) =>
    !string.IsNullOrWhiteSpace(configuration["urls"])
    || !string.IsNullOrWhiteSpace(configuration["http_ports"])
    || !string.IsNullOrWhiteSpace(configuration["https_ports"])
    || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
