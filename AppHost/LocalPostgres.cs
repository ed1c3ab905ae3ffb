using System.Diagnostics;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Aspire.Hosting;

/// <summary>
/// Where the run-mode PostgreSQL comes from. <c>container</c> (the default) is Aspire's own PostgreSQL container with
/// a data volume and needs Docker or Podman; <c>local</c> runs the PostgreSQL server binaries installed on this
/// machine as an executable resource, for machines without a container engine. Chosen by configuration
/// (<c>Postgres:Mode</c>), because Aspire parameters are resolved only after the model is built.
/// </summary>
internal static class PostgresMode
{
    public const string Key = "Postgres:Mode";

    public static bool IsLocal(IConfiguration configuration) => configuration[Key]?.Trim().ToLowerInvariant() switch
    {
        null or "" or "container" => false,
        "local" => true,
        var other => throw new DistributedApplicationException(
            $"{Key} is '{other}': use 'container' (PostgreSQL in Docker or Podman, the default) or 'local' (this machine's PostgreSQL server binaries)."),
    };
}

/// <summary>
/// PostgreSQL from this machine's server binaries (<c>initdb</c>, <c>postgres</c>), run by the orchestrator as an
/// executable with an allocated port. It keeps its cluster in a data directory between runs, as the container's
/// volume does, answers only on loopback with password (SCRAM) authentication, and stops cleanly when the
/// orchestrator sends SIGTERM (a "smart" shutdown, which the postmaster itself receives: the shell that starts it
/// execs into it).
/// </summary>
public sealed class LocalPostgresServerResource(string name, string command, string workingDirectory, ParameterResource password, string dataDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string EndpointName = "tcp";
    internal const string UserName = "postgres";

    public EndpointReference PrimaryEndpoint => new(this, EndpointName);

    public ParameterResource PasswordParameter { get; } = password;

    /// <summary>The cluster's directory (PGDATA); it outlives the run.</summary>
    public string DataDirectory { get; } = dataDirectory;

    internal Dictionary<string, string> Databases { get; } = new(StringComparer.OrdinalIgnoreCase);

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host={PrimaryEndpoint.Property(EndpointProperty.Host)};Port={PrimaryEndpoint.Property(EndpointProperty.Port)};Username={UserName};Password={PasswordParameter}");

    IEnumerable<KeyValuePair<string, ReferenceExpression>> IResourceWithConnectionString.GetConnectionProperties() =>
    [
        new("Host", ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.Host)}")),
        new("Port", ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.Port)}")),
        new("Username", ReferenceExpression.Create($"{UserName}")),
        new("Password", ReferenceExpression.Create($"{PasswordParameter}")),
    ];
}

/// <summary>A database on a <see cref="LocalPostgresServerResource"/>, created when the server is ready.</summary>
public sealed class LocalPostgresDatabaseResource(string name, string databaseName, LocalPostgresServerResource parent)
    : Resource(name), IResourceWithParent<LocalPostgresServerResource>, IResourceWithConnectionString
{
    public LocalPostgresServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create($"{Parent};Database={DatabaseName}");

    IEnumerable<KeyValuePair<string, ReferenceExpression>> IResourceWithConnectionString.GetConnectionProperties() =>
        ((IResourceWithConnectionString)Parent).GetConnectionProperties()
            .Append(new("DatabaseName", ReferenceExpression.Create($"{DatabaseName}")));
}

public static class LocalPostgresExtensions
{
    /// <summary>Overrides where the cluster is kept (default: <c>AppHost/.postgres/&lt;name&gt;</c>, ignored by git).</summary>
    public const string DataDirectoryKey = "Postgres:DataDirectory";

    /// <summary>Overrides where the server binaries are (default: PATH, then Debian's /usr/lib/postgresql/&lt;newest&gt;/bin).</summary>
    public const string BinDirectoryKey = "Postgres:BinDirectory";

    /// <summary>
    /// Adds PostgreSQL run from this machine's server binaries. The password is the same generated, user-secret-kept
    /// parameter (<c>&lt;name&gt;-password</c>) that <c>AddPostgres</c> uses, and it is applied to the cluster at
    /// every start, so a changed secret never locks the agents out of a kept cluster.
    /// </summary>
    public static IResourceBuilder<LocalPostgresServerResource> AddLocalPostgres(this IDistributedApplicationBuilder builder, string name)
    {
        var bin = ServerBinDirectory(builder.Configuration[BinDirectoryKey]);
        var dataDirectory = Path.GetFullPath(builder.Configuration[DataDirectoryKey] is { Length: > 0 } configured
            ? configured
            : Path.Combine(builder.AppHostDirectory, ".postgres", name));
        var password = ParameterResourceBuilderExtensions.CreateDefaultPasswordParameter(builder, $"{name}-password");
        var asPostgresUser = Environment.UserName == "root";

        // The shell folds the server's log (stderr) into stdout, so that the dashboard does not show every line
        // of it as an error, and then becomes the server (exec), so that the orchestrator's SIGTERM reaches it.
        var server = new LocalPostgresServerResource(name, "/bin/sh", Path.GetDirectoryName(dataDirectory)!, password, dataDirectory);
        string[] postgres =
        [
            .. asPostgresUser ? SwitchToPostgresUser : [],
            Path.Combine(bin, "postgres"), "-D", dataDirectory,
            // Loopback only, no Unix socket (its default directory may not exist or be writable), port from PGPORT.
            "-c", "listen_addresses=localhost", "-c", "unix_socket_directories=",
        ];

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(server, async (_, ct) =>
        {
            var passwordValue = await password.GetValueAsync(ct).ConfigureAwait(false)
                ?? throw new DistributedApplicationException($"The parameter {password.Name} has no value.");
            await PrepareClusterAsync(bin, dataDirectory, passwordValue, asPostgresUser, ct).ConfigureAwait(false);
        });

        string? connectionString = null;
        builder.Eventing.Subscribe<ConnectionStringAvailableEvent>(server, async (_, ct) =>
            connectionString = await server.ConnectionStringExpression.GetValueAsync(ct).ConfigureAwait(false));

        builder.Eventing.Subscribe<ResourceReadyEvent>(server, async (_, ct) =>
        {
            await using var connection = new NpgsqlConnection(connectionString + ";Database=postgres");
            await connection.OpenAsync(ct).ConfigureAwait(false);
            foreach (var database in server.Databases.Values)
            {
                await CreateDatabaseAsync(connection, database, ct).ConfigureAwait(false);
            }
        });

        var healthCheck = $"{name}_check";
        builder.Services.AddHealthChecks().AddNpgSql(
            _ => (connectionString ?? throw new InvalidOperationException("The connection string is not known yet.")) + ";Database=postgres",
            name: healthCheck);

        return builder.AddResource(server)
            .WithArgs(["-c", "exec \"$@\" 2>&1", "postgres", .. postgres])
            .WithEndpoint(scheme: "tcp", name: LocalPostgresServerResource.EndpointName, env: "PGPORT")
            .WithIconName("DatabaseMultiple")
            .WithHealthCheck(healthCheck)
            .ExcludeFromManifest();
    }

    /// <summary>Adds a database, created on the server (if it does not exist) once the server is ready.</summary>
    public static IResourceBuilder<LocalPostgresDatabaseResource> AddDatabase(this IResourceBuilder<LocalPostgresServerResource> server, string name, string? databaseName = null)
    {
        var database = new LocalPostgresDatabaseResource(name, databaseName ?? name, server.Resource);
        server.Resource.Databases[name] = database.DatabaseName;

        string? connectionString = null;
        server.ApplicationBuilder.Eventing.Subscribe<ConnectionStringAvailableEvent>(database, async (_, ct) =>
            connectionString = await database.ConnectionStringExpression.GetValueAsync(ct).ConfigureAwait(false));

        // The orchestrator moves a container's child resources along with it, but not an executable's: mirror the
        // server's state here, so that WaitFor(database) waits for the server and then for this health check.
        server.ApplicationBuilder.Eventing.Subscribe<InitializeResourceEvent>(database, (@event, initializing) =>
        {
            var stopping = @event.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            _ = Task.Run(() => FollowServerStateAsync(@event.Notifications, server.Resource, database, stopping), stopping);
            return Task.CompletedTask;
        });

        var healthCheck = $"{name}_check";
        server.ApplicationBuilder.Services.AddHealthChecks().AddNpgSql(
            _ => connectionString ?? throw new InvalidOperationException("The connection string is not known yet."),
            name: healthCheck);

        return server.ApplicationBuilder.AddResource(database)
            .WithIconName("Database")
            .WithHealthCheck(healthCheck)
            .ExcludeFromManifest();
    }

    private static async Task FollowServerStateAsync(ResourceNotificationService notifications, LocalPostgresServerResource server, LocalPostgresDatabaseResource database, CancellationToken stopping)
    {
        try
        {
            await foreach (var update in notifications.WatchAsync(stopping).ConfigureAwait(false))
            {
                if (ReferenceEquals(update.Resource, server))
                {
                    await notifications.PublishUpdateAsync(database, snapshot => snapshot with
                    {
                        State = update.Snapshot.State,
                        StartTimeStamp = update.Snapshot.StartTimeStamp,
                        StopTimeStamp = update.Snapshot.StopTimeStamp,
                    }).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    // PostgreSQL refuses to run as root: as root, the server and its tools run as the postgres user. setpriv execs
    // (no process stays in between), so signals reach the server itself.
    private static readonly string[] SwitchToPostgresUser = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"];

    /// <summary>Creates the cluster on first use, and sets the superuser's password to the parameter's value.</summary>
    private static async Task PrepareClusterAsync(string bin, string dataDirectory, string password, bool asPostgresUser, CancellationToken ct)
    {
        Directory.CreateDirectory(dataDirectory);
        if (asPostgresUser)
        {
            await RunAsync("chown", ["postgres:postgres", dataDirectory], null, ct).ConfigureAwait(false);
        }

        // initdb wants an empty, private directory; so does the server at every start.
        if (OperatingSystem.IsWindows())
        {
            throw new DistributedApplicationException($"{PostgresMode.Key}=local runs on Linux and macOS; use the container on Windows.");
        }

        File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        if (!File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            // The password reaches initdb through a file that only the server's user can read, never an argument.
            var passwordFile = Path.Combine(dataDirectory, "..", $".{Path.GetFileName(dataDirectory)}.pwfile");
            await File.WriteAllTextAsync(passwordFile, password + "\n", ct).ConfigureAwait(false);
            try
            {
                File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                if (asPostgresUser)
                {
                    await RunAsync("chown", ["postgres", passwordFile], null, ct).ConfigureAwait(false);
                }

                await RunAsServerUserAsync(asPostgresUser, Path.Combine(bin, "initdb"),
                    ["-D", dataDirectory, "-U", LocalPostgresServerResource.UserName, "-E", "UTF8",
                     "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", $"--pwfile={passwordFile}"],
                    null, ct).ConfigureAwait(false);
            }
            finally
            {
                File.Delete(passwordFile);
            }

            return;
        }

        // A kept cluster: make its password the current one (single-user mode, before the server starts; the
        // statement reaches the backend on stdin, not on a command line).
        var statement = $"ALTER ROLE {LocalPostgresServerResource.UserName} PASSWORD '{password.Replace("'", "''", StringComparison.Ordinal)}';\n";
        await RunAsServerUserAsync(asPostgresUser, Path.Combine(bin, "postgres"),
            ["--single", "-D", dataDirectory, "-c", "unix_socket_directories=", "postgres"],
            statement, ct).ConfigureAwait(false);
    }

    private static async Task CreateDatabaseAsync(NpgsqlConnection connection, string database, CancellationToken ct)
    {
        await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection);
        exists.Parameters.AddWithValue(database);
        if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null)
        {
            return;
        }

        // An identifier cannot be a parameter: quote it.
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", connection);
        try
        {
            await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase)
        {
            // Created meanwhile (a second AppHost on the same cluster).
        }
    }

    /// <summary>The directory with initdb and postgres: configured, on PATH, or Debian's newest /usr/lib/postgresql/N/bin.</summary>
    private static string ServerBinDirectory(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return File.Exists(Path.Combine(configured, "postgres"))
                ? configured
                : throw new DistributedApplicationException($"{BinDirectoryKey} is '{configured}', which has no postgres executable.");
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(dir => File.Exists(Path.Combine(dir, "postgres")) && File.Exists(Path.Combine(dir, "initdb")));
        if (onPath is not null)
        {
            return onPath;
        }

        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(version => Path.Combine(version, "bin"))
                .Where(dir => File.Exists(Path.Combine(dir, "postgres")))
                .OrderByDescending(dir => int.TryParse(Path.GetFileName(Path.GetDirectoryName(dir)), out var major) ? major : 0)
                .FirstOrDefault()
            : null;
        return debian ?? throw new DistributedApplicationException(
            $"{PostgresMode.Key}=local needs the PostgreSQL server binaries (initdb, postgres): install them (Debian: apt-get install postgresql) or set {BinDirectoryKey}.");
    }

    private static Task RunAsServerUserAsync(bool asPostgresUser, string tool, string[] arguments, string? input, CancellationToken ct) =>
        asPostgresUser
            ? RunAsync(SwitchToPostgresUser[0], [.. SwitchToPostgresUser[1..], tool, .. arguments], input, ct)
            : RunAsync(tool, arguments, input, ct);

    private static async Task RunAsync(string fileName, IEnumerable<string> arguments, string? input, CancellationToken ct)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new DistributedApplicationException($"{fileName} did not start.");
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input.AsMemory(), ct).ConfigureAwait(false);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            // The command line carries no secret (the password goes through a file or stdin).
            throw new DistributedApplicationException(
                $"{fileName} {string.Join(' ', start.ArgumentList)} exited {process.ExitCode} while preparing the local PostgreSQL: {(await error.ConfigureAwait(false)).Trim()} {(await output.ConfigureAwait(false)).Trim()}");
        }
    }
}
