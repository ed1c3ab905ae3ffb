using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL server from the machine's own binaries (initdb, pg_ctl on PATH), on a free
/// loopback port, run as the <c>postgres</c> user when the tests run as root. <see cref="Shared"/> serves
/// most tests (each takes its own database); a test that stops the server makes its own.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private static readonly Lazy<Task<PostgresServer>> SharedServer = new(async () =>
    {
        var server = await StartAsync();
        // The test host may be ended before a ProcessExit handler finishes deleting a cluster of 100+ MB, so a
        // detached reaper waits for this process to end, then stops the server (if it still runs) and deletes it all.
        server.ReapWhenThisProcessExits();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopServerAsync().GetAwaiter().GetResult();
        return server;
    });

    private static int _databaseCounter;
    private readonly string _directory;

    private readonly string _extraOptions;

    private PostgresServer(string directory, int port, string extraOptions)
    {
        _directory = directory;
        Port = port;
        _extraOptions = extraOptions;
    }

    public static Task<PostgresServer> Shared => SharedServer.Value;

    public int Port { get; }

    public string DataDirectory => Path.Combine(_directory, "data");

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username=postgres;Pooling=false;Timeout=5";

    /// <summary>The same database through the server's Unix socket (reachable from another network namespace).</summary>
    public string UnixSocketConnectionString(string connectionString) =>
        new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { Host = _directory, Port = Port }.ConnectionString;

    /// <param name="tlsOnly">serve TLS with a self-signed certificate and refuse every connection without it</param>
    public static async Task<PostgresServer> StartAsync(bool tlsOnly = false)
    {
        var directory = Directory.CreateTempSubdirectory("nodeagent-pg-").FullName;
        if (Environment.UserName == "root")
        {
            await Run("chown", ["postgres", directory]);
        }

        var data = Path.Combine(directory, "data");
        var options = tlsOnly ? $"-c ssl=on -c ssl_cert_file={directory}/server.crt -c ssl_key_file={directory}/server.key" : "";
        var server = new PostgresServer(directory, FreePort(), options);
        await RunAsPostgres("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        if (tlsOnly)
        {
            await RunAsPostgres("openssl", ["req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                "-keyout", Path.Combine(directory, "server.key"), "-out", Path.Combine(directory, "server.crt")]);
            await RunAsPostgres("chmod", ["600", Path.Combine(directory, "server.key")]);
            var hba = Path.Combine(data, "pg_hba.conf");
            var lines = (await File.ReadAllLinesAsync(hba)).Select(l => l.StartsWith("host ", StringComparison.Ordinal) ? "hostssl" + l[4..] : l);
            await File.WriteAllLinesAsync(hba, lines);
        }

        await server.StartServerAsync();
        return server;
    }

    public Task StartServerAsync() => RunAsPostgres("pg_ctl", [
        "-D", DataDirectory, "-l", Path.Combine(_directory, "server.log"), "-w", "-t", "60",
        "-o", $"-c listen_addresses=127.0.0.1 -c port={Port} -c unix_socket_directories={_directory} -c fsync=off -c max_connections=200 {_extraOptions}",
        "start"]);

    public Task StopServerAsync() => RunAsPostgres("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"]);

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "test")
    {
        var name = $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _databaseCounter)}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopServerAsync();
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void ReapWhenThisProcessExits()
    {
        var stop = Environment.UserName == "root"
            ? $"runuser -u postgres -- \"{ServerTool("pg_ctl")}\""
            : $"\"{ServerTool("pg_ctl")}\"";
        var script = $"""
            while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 0.5; done
            {stop} -D "{DataDirectory}" -m immediate -w stop >/dev/null 2>&1
            rm -rf "{_directory}"
            """;
        var start = new ProcessStartInfo("setsid") { RedirectStandardOutput = false, RedirectStandardError = false };
        foreach (var argument in new[] { "/bin/sh", "-c", script })
        {
            start.ArgumentList.Add(argument);
        }

        using var reaper = Process.Start(start);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Task RunAsPostgres(string tool, string[] arguments)
    {
        tool = ServerTool(tool);
        return Environment.UserName == "root" ? Run("runuser", ["-u", "postgres", "--", tool, .. arguments]) : Run(tool, arguments);
    }

    /// <summary>initdb and pg_ctl from PATH, or from Debian's /usr/lib/postgresql/N/bin, which is not on PATH.</summary>
    private static string ServerTool(string tool)
    {
        if (tool is not ("initdb" or "pg_ctl"))
        {
            return tool;
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);
        if (onPath is not null)
        {
            return onPath;
        }

        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(dir => Path.Combine(dir, "bin", tool)).Where(File.Exists)
                .OrderByDescending(path => int.TryParse(Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(path))), out var major) ? major : 0)
                .FirstOrDefault()
            : null;
        return debian ?? throw new InvalidOperationException($"{tool} was not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL server (apt-get install postgresql).");
    }

    private static async Task Run(string fileName, string[] arguments)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} exited {process.ExitCode}: {await error}{await output}");
        }
    }
}
