using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Changes;

/// <summary>One stored file event, as a test reads it back.</summary>
public sealed record StoredEvent(string Type, string Path, string? OldPath, string Source, string EntryType, long? Size, string? Sha256,
    string? Snapshot, bool NotHashed, bool Torn, bool TooLarge, byte[]? PathBytes, int? Mode);

/// <summary>
/// A real tree watched by the real agent (a child process) storing into its own database: the agent's inventory
/// scans only at start (so that what the tests see comes from the watch, unless they ask for scans).
/// </summary>
public sealed class WatchedTree : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private WatchedTree(TempTree tree, string connectionString, NpgsqlDataSource database)
    {
        Tree = tree;
        ConnectionString = connectionString;
        Database = database;
    }

    public TempTree Tree { get; }

    public string Root => Tree.Root;

    public string ConnectionString { get; }

    public NpgsqlDataSource Database { get; }

    private string _url = "";

    public AgentProcess? Agent { get; private set; }

    /// <summary>Starts the agent on <paramref name="tree"/> and waits until it has watched it and reconciled its first scan.</summary>
    public static Task<WatchedTree> StartAsync(TempTree tree, params (string Key, string? Value)[] settings) =>
        StartAsync(tree, server: null, runAs: null, settings);

    /// <param name="server">a server of the test's own (to stop it), else the shared one</param>
    /// <param name="runAs">the user the agent runs as (through runuser), else the test's</param>
    public static async Task<WatchedTree> StartAsync(TempTree tree, PostgresServer? server, string? runAs, params (string Key, string? Value)[] settings)
    {
        var connectionString = await (server ?? await PostgresServer.Shared).CreateDatabaseAsync() + ";Timeout=2";
        var watched = new WatchedTree(tree, connectionString, NpgsqlDataSource.Create(connectionString)) { _runAs = runAs };
        await watched.StartAgentAsync(settings);
        return watched;
    }

    private string? _runAs;

    public async Task StartAgentAsync(params (string Key, string? Value)[] settings)
    {
        (string, string?)[] defaults =
        [
            ("urls", _url = $"http://127.0.0.1:{AgentProcess.FreePort()}"),
            ("Agent__Inventory__ScanInterval", "01:00:00"),
            ("Agent__Changes__QuietWindow", "00:00:00.05"),
            ("Logging__LogLevel__NodeAgent.Changes", "Debug"),
        ];
        var environment = AgentProcess.AgentEnvironment(ConnectionString, Root, [.. defaults, .. settings]);
        Agent = AgentProcess.StartAs(_runAs, environment);
        await Agent.WaitForLinesAsync("Reconciled a scan", 1, Patience);
    }

    /// <summary>Stops the agent (SIGTERM) and waits for it to exit.</summary>
    public async Task StopAgentAsync()
    {
        if (Agent is { } agent)
        {
            await agent.TerminateAsync(Patience);
            await agent.DisposeAsync();
            Agent = null;
        }
    }

    /// <summary>Kills the agent (SIGKILL): whatever it had not stored is lost with it.</summary>
    public async Task KillAgentAsync()
    {
        if (Agent is { } agent)
        {
            await agent.KillAsync(Patience);
            await agent.DisposeAsync();
            Agent = null;
        }
    }

    public async Task<List<StoredEvent>> EventsAsync()
    {
        var events = new List<StoredEvent>();
        await using var command = Database.CreateCommand(
            """
            SELECT event_type, path, old_path, source, entry_type, size, encode(sha256, 'hex'), encode(snapshot, 'hex'), not_hashed, torn, too_large, path_bytes, mode
              FROM file_events ORDER BY event_id
            """);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            events.Add(new StoredEvent(
                reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.GetBoolean(8), reader.GetBoolean(9), reader.GetBoolean(10), reader.IsDBNull(11) ? null : reader.GetFieldValue<byte[]>(11),
                reader.IsDBNull(12) ? null : reader.GetInt32(12)));
        }

        return events;
    }

    /// <summary>Waits until the stored events satisfy <paramref name="done"/>, then returns them.</summary>
    public async Task<List<StoredEvent>> WaitForEventsAsync(Func<List<StoredEvent>, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Patience);
        while (true)
        {
            var events = await EventsAsync();
            if (done(events))
            {
                return events;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for events; stored so far:\n{string.Join('\n', events)}\nAgent output:\n{Agent?.Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Events stored from now on only: waits until the agent is idle and returns how many are stored.</summary>
    public async Task<int> SettleAsync()
    {
        var count = -1;
        while (true)
        {
            await Task.Delay(400);
            var now = (await EventsAsync()).Count;
            if (now == count)
            {
                return now;
            }

            count = now;
        }
    }

    /// <summary>Waits until what is on disk is stored (the first scan's events included) and returns how many events are stored.</summary>
    public async Task<int> BaselineAsync()
    {
        await WaitUntilStoredStateEqualsDiskAsync();
        return await SettleAsync();
    }

    /// <summary>The stored current state: path to "type size sha256".</summary>
    public async Task<SortedDictionary<string, string>> StoredStateAsync()
    {
        var state = new SortedDictionary<string, string>(StringComparer.Ordinal);
        await using var command = Database.CreateCommand("SELECT path, entry_type, size, coalesce(encode(sha256, 'hex'), '-'), mode FROM file_state");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var type = reader.GetString(1);
            state[reader.GetString(0)] = type == "d" ? $"d {reader.GetInt32(4)}" : $"{type} {reader.GetInt64(2)} {reader.GetString(3)} {reader.GetInt32(4)}";
        }

        return state;
    }

    /// <summary>What is on disk now, in the same form, leaving out the paths under <paramref name="excludedDirectories"/>.</summary>
    public SortedDictionary<string, string> DiskState(params string[] excludedDirectories)
    {
        var state = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var scan = new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(Root, CancellationToken.None);
        foreach (var entry in scan.Snapshot)
        {
            var path = PathText.ToText(entry.PathBytes);
            if (excludedDirectories.Any(d => path == d || path.StartsWith(d + "/", StringComparison.Ordinal)))
            {
                continue;
            }

            var letter = ((char)entry.Type).ToString();
            if (entry.Type == EntryType.Directory)
            {
                state[path] = $"d {entry.Permissions}";
                continue;
            }

            var sha = entry.Type == EntryType.File ? Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(Root, Encoding.UTF8.GetString(entry.PathBytes))))) : "-";
            state[path] = $"{letter} {entry.Size} {sha} {entry.Permissions}";
        }

        return state;
    }

    /// <summary>Waits until the stored current state equals the disk (and stays so), failing with the difference.</summary>
    public async Task WaitUntilStoredStateEqualsDiskAsync(TimeSpan? timeout = null, params string[] excludedDirectories)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Patience);
        while (true)
        {
            var disk = DiskState(excludedDirectories);
            var stored = await StoredStateAsync();
            if (disk.SequenceEqual(stored))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                var missing = disk.Except(stored).Take(10);
                var extra = stored.Except(disk).Take(10);
                Assert.Fail($"Stored state differs from disk ({disk.Count} on disk, {stored.Count} stored).\nOn disk, not stored: {string.Join(", ", missing)}\nStored, not on disk: {string.Join(", ", extra)}\nAgent output:\n{Agent?.Output}");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>The agent's /metrics text.</summary>
    public async Task<string> MetricsAsync()
    {
        using var client = new HttpClient();
        return await client.GetStringAsync($"{_url}/metrics");
    }

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels contain <paramref name="label"/> (e.g. <c>event_type="create"</c>).</summary>
    public async Task<double?> MetricAsync(string name, string? label = null)
    {
        foreach (var line in (await MetricsAsync()).Split('\n'))
        {
            if (line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal))
            {
                if (label is null || line.Contains(label, StringComparison.Ordinal))
                {
                    return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAgentAsync();
        await Database.DisposeAsync();
    }
}
