using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Native;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace NodeAgent.Shared.Hosting;

/// <summary>
/// Starts the agent with the capabilities it is given: a long-running ASP.NET Core host (the loops, /metrics,
/// /health, /alive), or with <c>Agent:RunOnce=true</c> a lean plain host that runs each capability's one-shot job and
/// exits. Whatever stops it becomes one line on stderr and an exit code (<see cref="ExitCodes"/>).
/// </summary>
public static class AgentHost
{
    public const int DefaultPort = 9090;
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args, params ICapability[] capabilities)
    {
        try
        {
            IReadOnlyList<SettingKey> keys = [.. AgentSettings.Keys, .. capabilities.SelectMany(c => c.Settings)];
            switch (CommandLine.Parse(args, keys))
            {
                case CommandLine.Action.Help:
                    Console.Out.Write(CommandLine.Usage(keys));
                    return ExitCodes.Success;
                case CommandLine.Action.Version:
                    Console.Out.WriteLine($"nodeagent {CommandLine.Version}");
                    return ExitCodes.Success;
            }

            void AddCapabilities(AgentBuilder agent)
            {
                foreach (var capability in capabilities)
                {
                    capability.Add(agent);
                }
            }

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
            Endpoints.Validate(oneShot.Configuration);

            if (settings.MigrateOnly)
            {
                return await MigrateAsync(oneShot, settings);
            }

            if (settings.RunOnce)
            {
                ConfigureLogging(oneShot.Logging, oneShot.Configuration);
                var withTelemetry = Compose(oneShot, settings, AddCapabilities);
                oneShot.Services.AddMetrics();
                oneShot.Services.AddSingleton<RunOnceCommand>();
                using var host = oneShot.Build();
                var command = host.Services.GetRequiredService<RunOnceCommand>();
                var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
                int exitCode;
                if (withTelemetry)
                {
                    // The tracer starts with the host: the jobs' spans need it running.
                    await host.StartAsync();
                    exitCode = await command.RunAsync(stopping);
                }
                else
                {
                    // A run-once host without telemetry starts no service the jobs use: they begin while it starts.
                    var running = command.RunAsync(stopping);
                    await host.StartAsync();
                    exitCode = await running;
                }

                await host.StopAsync();
                return exitCode;
            }

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
            ConfigureLogging(builder.Logging, configuration: null);
            builder.AddServiceDefaults();
            Compose(builder, settings, AddCapabilities);
            if (!Endpoints.AreConfigured(builder.Configuration))
            {
                builder.WebHost.UseUrls($"http://*:{DefaultPort}");
            }

            var app = builder.Build();
            app.MapDefaultEndpoints();
            await app.RunAsync();
            return ExitCodes.Success;
        }
        catch (Exception e)
        {
            var (code, message) = ExitCodes.For(e);
            Console.Error.WriteLine(message);
            return code;
        }
    }

    /// <summary>The shared base, then the capabilities (which read and check their own settings here), then the mount probe.</summary>
    /// <returns>whether the agent has telemetry (traces and metrics to export)</returns>
    private static bool Compose(IHostApplicationBuilder builder, AgentSettings settings, Action<AgentBuilder> addCapabilities)
    {
        var services = builder.Services;
        services.AddSingleton<AgentDiagnostics>();
        services.AddSingleton<TreeScanner>();
        services.AddSingleton<ScanFeed>();
        services.Configure<HostOptions>(options => options.ShutdownTimeout = ShutdownTimeout);

        // A run-once agent gets telemetry only when an OTLP endpoint is configured, so that a one-shot scan starts and
        // stops fast; the long-running agent always has it (and /metrics).
        var exportsOtlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var withTelemetry = !settings.RunOnce || exportsOtlp;
        AddStorage(builder, settings, withTelemetry);
        if (settings.RunOnce && exportsOtlp)
        {
            // The long-running agent gets this from AddServiceDefaults.
            builder.ConfigureOpenTelemetry();
        }

        if (withTelemetry)
        {
            services.AddOpenTelemetry()
                .WithTracing(tracing => tracing.AddSource(AgentDiagnostics.SourceName))
                .WithMetrics(metrics => metrics
                    .AddMeter(AgentDiagnostics.SourceName)
                    .AddView(_ => new MetricStreamConfiguration { CardinalityLimit = AgentDiagnostics.SeriesPerMetric }));
        }

        addCapabilities(new AgentBuilder(builder, settings));

        // A missing hostPath is the most common deployment mistake: say so before anything starts.
        MountDirectory.Probe(settings.MountPath);
        return withTelemetry;
    }

    /// <summary><c>Agent:MigrateOnly=true</c>: the schema migrations of every capability, then exit.</summary>
    private static async Task<int> MigrateAsync(HostApplicationBuilder builder, AgentSettings settings)
    {
        ConfigureLogging(builder.Logging, builder.Configuration);
        AddStorage(builder, settings, withTelemetry: false);
        using var host = builder.Build();
        var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        await host.StartAsync();
        var (error, attempts) = await host.Services.GetRequiredService<RetryPolicy>().TryAsync(
            host.Services.GetRequiredService<SchemaMigrator>().MigrateAsync, attempts: 3, stopping);
        await host.StopAsync();
        if (error is null)
        {
            return ExitCodes.Success;
        }

        Console.Error.WriteLine($"nodeagent: could not migrate the schema in PostgreSQL at {settings.DatabaseDescription} after {attempts} attempts: {RetryPolicy.Describe(error)}");
        return ExitCodes.Failed;
    }

    /// <summary>What every mode that writes to PostgreSQL shares: the settings, the clock, the retry policy and the database.</summary>
    private static void AddStorage(IHostApplicationBuilder builder, AgentSettings settings, bool withTelemetry)
    {
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<RetryPolicy>();
        builder.AddAgentDatabase(settings, withTelemetry);
    }

    /// <param name="configuration">
    /// the Logging section's source, for the one-shot plain hosts (run once, migrate only), which log on the one-line console:
    /// the same lines, with less to start before the work can begin. The web host reads the section itself.
    /// </param>
    private static void ConfigureLogging(ILoggingBuilder logging, IConfiguration? configuration)
    {
        if (configuration is not null)
        {
            logging.AddConfiguration(configuration.GetSection("Logging"));
            logging.Services.AddSingleton<ILoggerProvider>(_ => new OneLineConsoleLoggerProvider());
        }
        else
        {
            logging.AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.UseUtcTimestamp = true;
                options.TimestampFormat = OneLineConsoleLoggerProvider.TimestampFormat;
            });
        }

        // A host that cannot start (a port in use) is reported in one line by RunAsync, not as a logged stack trace.
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
    }
}
