using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Processes;
using NodeAgent.Shared.Database;
using NodeAgent.Tests.Infrastructure;
using Npgsql;

namespace NodeAgent.Tests.Processes;

/// <summary>The process store against a real PostgreSQL: starts, exits, retries and batches given up in between.</summary>
public sealed class ProcessStoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
    private NpgsqlDataSource _database = null!;
    private ProcessStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = NpgsqlDataSource.Create(await (await PostgresServer.Shared).CreateDatabaseAsync());
        _store = new ProcessStore(_database, new SchemaMigrator(_database, NullLogger<SchemaMigrator>.Instance), NullLogger<ProcessStore>.Instance);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task A_process_stored_running_is_completed_by_its_exit_in_a_later_batch()
    {
        var gcc = Row(100, "/usr/bin/gcc-12", ProcessKind.Compile);
        await _store.StoreAsync(Batch(gcc), CancellationToken.None);
        Assert.Equal([[100, "compile", null, null, null]], await StoredAsync());

        await _store.StoreAsync(Batch(gcc with { EndedAt = Start.AddSeconds(2), ExitCode = 1 }), CancellationToken.None);

        Assert.Equal([[100, "compile", Start.AddSeconds(2).UtcDateTime, 1, null]], await StoredAsync());
    }

    [Fact]
    public async Task A_process_that_started_and_ended_in_one_batch_is_one_ended_row()
    {
        var python = Row(200, "/usr/bin/python3.11", ProcessKind.Run);

        await _store.StoreAsync(Batch(python, python with { EndedAt = Start.AddSeconds(1), Signal = 11 }), CancellationToken.None);

        Assert.Equal([[200, "run", Start.AddSeconds(1).UtcDateTime, null, 11]], await StoredAsync());
    }

    [Fact]
    public async Task A_batch_stored_again_after_a_lost_acknowledgement_changes_nothing()
    {
        var first = Row(300, "/usr/bin/python3.11", ProcessKind.Run);
        var second = Row(301, "/usr/bin/gcc-12", ProcessKind.Compile);
        var starts = Batch(first, second);
        var exits = Batch(first with { EndedAt = Start.AddSeconds(3), ExitCode = 0 });

        await _store.StoreAsync(starts, CancellationToken.None);
        await _store.StoreAsync(exits, CancellationToken.None);
        await _store.StoreAsync(starts, CancellationToken.None);
        await _store.StoreAsync(exits, CancellationToken.None);

        Assert.Equal(
            [[300, "run", Start.AddSeconds(3).UtcDateTime, 0, null], [301, "compile", null, null, null]],
            await StoredAsync());
        Assert.Equal([[1L, 0L, 1L]], await _database.RowsAsync(
            "SELECT sum(runs), sum(failed_runs), sum(builds) FROM activity_hourly"));
    }

    [Fact]
    public async Task An_exit_whose_start_was_never_stored_is_stored_whole()
    {
        // Its start's batch was given up (the database rejected it): the exit still carries everything the exec showed.
        var python = Row(400, "/usr/bin/python3.11", ProcessKind.Run);
        var other = Row(401, "/usr/bin/python3.11", ProcessKind.Run);

        await _store.StoreAsync(Batch(other, python with { EndedAt = Start.AddSeconds(4), ExitCode = 2 }), CancellationToken.None);

        Assert.Equal(
            [[400, "run", Start.AddSeconds(4).UtcDateTime, 2, null], [401, "run", null, null, null]],
            await StoredAsync());
        Assert.Equal([["/usr/bin/python3.11", "/home/s/hw1", "node-a"]], await _database.RowsAsync(
            "SELECT exe, cwd, node_name FROM process_events WHERE pid = 400"));
    }

    private Task<List<object?[]>> StoredAsync() =>
        _database.RowsAsync("SELECT pid, kind, ended_at, exit_code, signal FROM process_events ORDER BY pid");

    private static ProcessBatch Batch(params ProcessRow[] rows) => new("node-a", "/mnt/node-data", rows);

    private static ProcessRow Row(int pid, string exe, ProcessKind kind) =>
        new(Guid.CreateVersion7(Start), pid, Start,
            new ProcessDetails(Encoding.UTF8.GetBytes(exe), [Encoding.UTF8.GetBytes(exe)], false, "/home/s/hw1"u8.ToArray(),
                1000, 1000, 1, null, null, null, null, ProcessReadFlags.None),
            kind, [], null, null, null);
}
