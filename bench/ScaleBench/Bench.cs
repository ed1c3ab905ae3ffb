using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Inventory;
using NodeAgent.Processes;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using Npgsql;

namespace ScaleBench;

/// <summary>
/// The benchmark's phases: the first start's baseline, the steady phase (scans, file events, process events, all in
/// real time), the unchanged-trees phase (scans only), then the queries. Every write goes through the agent's stores.
/// </summary>
internal sealed class Bench(Options options)
{
    /// <summary>ChangeLoop's bound on a batch (BatchMaxEvents): a first scan of a large tree is stored in batches this big.</summary>
    private const int BaselineBatchEvents = 5000;

    /// <summary>Attempts per record before it counts as dropped: the delivery loop keeps retrying, a benchmark must end.</summary>
    private const int MaxAttempts = 8;

    /// <summary>What a scan of 11,100 entries takes the real scanner; stored in the scan row only.</summary>
    private static readonly TimeSpan ScanDuration = TimeSpan.FromMilliseconds(45);

    private static readonly TimeSpan Round = TimeSpan.FromSeconds(1);
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private readonly RetryPolicy _retry = new(TimeProvider.System);
    private readonly StringBuilder _report = new();
    private volatile Phase _phase = new("setup");
    private long _missedScans;
    private SimulatedNode[] _nodes = [];
    private Agent[] _agents = [];

    public async Task<int> RunAsync()
    {
        var startedAt = DateTimeOffset.UtcNow;
        await using var admin = Agent.CreateDataSource(options.ConnectionString, 4, "scalebench");
        await new SchemaMigrator(admin, NullLogger<SchemaMigrator>.Instance).MigrateAsync(CancellationToken.None);
        var templates = await SeedTemplatesAsync(admin);

        Header(startedAt, await ServerSettingsAsync(admin), templates);
        Progress($"building {options.Nodes} nodes in memory");
        var built = Stopwatch.StartNew();
        _nodes = [.. Enumerable.Range(0, options.Nodes).AsParallel().AsOrdered()
            .Select(i => new SimulatedNode(i, options.StudentsPerNode, options.ContentBytes, startedAt))];
        Progress($"built in {built.Elapsed.TotalSeconds:0.0} s: {_nodes[0].Entries:N0} entries per node");

        using var meters = new PlainMeterFactory();
        using var diagnostics = new AgentDiagnostics(meters);
        var metrics = new ChangesMetrics(diagnostics);
        var shared = options.SharedPool > 0 ? Agent.CreateDataSource(options.ConnectionString, options.SharedPool) : null;
        var dataSources = _nodes.Select(_ => shared ?? Agent.CreateDataSource(options.ConnectionString, options.PoolSize)).Distinct().ToList();
        _agents = [.. dataSources.Count == 1 ? _nodes.Select(_ => Agent.Create(dataSources[0], metrics)) : dataSources.Select(d => Agent.Create(d, metrics))];
        try
        {
            var empty = await DatabaseProbe.MeasureAsync(admin);
            SizeSnapshot afterBaseline;
            if (options.Baseline)
            {
                afterBaseline = await BaselineAsync(admin, empty);
            }
            else
            {
                afterBaseline = empty;
                Line("BASELINE skipped (--no-baseline): file_state starts empty, each node's first scan in the steady phase stores its first list");
                Line();
            }

            var (steadyEnd, unchangedStart, unchangedEnd, steadyEndTime) = await SteadyAndUnchangedAsync(admin, afterBaseline);
            SizeTables(afterBaseline, steadyEnd, unchangedStart, unchangedEnd);
            await QueriesAsync(admin, steadyEndTime);
        }
        finally
        {
            foreach (var dataSource in dataSources)
            {
                await dataSource.DisposeAsync();
            }
        }

        Line($"total wall time {DateTimeOffset.UtcNow - startedAt:hh\\:mm\\:ss}; benchmark process peak working set {Bytes(Process.GetCurrentProcess().PeakWorkingSet64)}, "
            + $"GC pauses {GC.GetTotalPauseDuration().TotalSeconds:0.0} s in total");
        var text = _report.ToString();
        Directory.CreateDirectory(options.ResultsDirectory);
        var file = Path.Combine(options.ResultsDirectory, $"scale-{startedAt:yyyyMMdd-HHmmss}.txt");
        await File.WriteAllTextAsync(file, text);
        Console.WriteLine();
        Console.WriteLine(text);
        Console.WriteLine($"report written to {file}");
        return 0;
    }

    private async Task<SizeSnapshot> BaselineAsync(NpgsqlDataSource admin, SizeSnapshot before)
    {
        var phase = _phase = new Phase("baseline");
        var cpu = CpuSample.Now();
        var next = -1;
        var done = 0;
        using var progress = new CancellationTokenSource();
        var reporter = ReportProgressAsync(() => $"baseline: {Volatile.Read(ref done)}/{_nodes.Length} nodes, {phase[Phase.FileEvents].Items:N0} events stored", progress.Token);

        async Task LoadNodesAsync()
        {
            for (var i = Interlocked.Increment(ref next); i < _nodes.Length; i = Interlocked.Increment(ref next))
            {
                // The agent's first start: the inventory stores its first scan (a new list), and the change recording,
                // finding nothing in file_state, stores every entry as a create event with its state.
                await ScanAsync(_nodes[i], _agents[i]);
                foreach (var batch in _nodes[i].BaselineBatches(BaselineBatchEvents))
                {
                    await StoreAsync(Phase.FileEvents, batch.Events.Count, async () =>
                    {
                        await _agents[i].Changes.StoreAsync(batch, CancellationToken.None);
                        return true;
                    }, null, null);
                }

                Interlocked.Increment(ref done);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(options.BaselineConcurrency, _nodes.Length)).Select(_ => Task.Run(LoadNodesAsync)));
        phase.Ended = DateTimeOffset.UtcNow;
        await progress.CancelAsync();
        await reporter;
        var after = await DatabaseProbe.MeasureAsync(admin);
        var cpuText = CpuSample.Describe(cpu, CpuSample.Now(), phase.Elapsed);

        var events = phase[Phase.FileEvents];
        Line("BASELINE: every node's first start (its first inventory list, and every entry as a create event found by its scan,");
        Line("          with the content of every source file and its file_state row), stored through InventoryStore and ChangeStore");
        Line($"  {_nodes.Length:N0} nodes, {options.BaselineConcurrency} at a time, batches of up to {BaselineBatchEvents:N0} events (ChangeLoop's bound)");
        Line($"  wall time {phase.Elapsed.TotalSeconds:N0} s: {events.Items:N0} events in {events.Calls:N0} batches = {events.Items / phase.Elapsed.TotalSeconds:N0} events/s; {cpuText}");
        Line($"  database {Bytes(before.DatabaseBytes)} -> {Bytes(after.DatabaseBytes)} (+{Bytes(after.DatabaseBytes - before.DatabaseBytes)}), WAL written {Bytes(after.WalBytes - before.WalBytes)}");
        foreach (var table in new[] { "file_events", "file_state", "file_contents", "file_list_chunks" })
        {
            if (after.Tables.TryGetValue(table, out var t))
            {
                Line($"    {table,-18} {Bytes(t.Bytes),12}  {t.Rows,12:N0} rows (estimate)");
            }
        }

        LatencyTable(phase);
        Line();
        return after;
    }

    private async Task<(SizeSnapshot SteadyEnd, SizeSnapshot UnchangedStart, SizeSnapshot UnchangedEnd, DateTimeOffset SteadyEndTime)> SteadyAndUnchangedAsync(
        NpgsqlDataSource admin, SizeSnapshot steadyStart)
    {
        var steady = _phase = new Phase("steady");
        var cpu = CpuSample.Now();
        using var scansStop = new CancellationTokenSource();
        using var eventsStop = new CancellationTokenSource();
        using var monitorStop = new CancellationTokenSource();
        var start = DateTimeOffset.UtcNow;
        var scanLoops = Enumerable.Range(0, _nodes.Length).Select(i => Task.Run(() => ScanLoopAsync(i, start, scansStop.Token))).ToList();
        var fileLoops = options.FileRate > 0 ? Enumerable.Range(0, _nodes.Length).Select(i => Task.Run(() => FileLoopAsync(i, start, eventsStop.Token))).ToList() : [];
        var processLoops = options.ProcessRate > 0 ? Enumerable.Range(0, _nodes.Length).Select(i => Task.Run(() => ProcessLoopAsync(i, start, eventsStop.Token))).ToList() : [];
        var connections = MonitorConnectionsAsync(admin, monitorStop.Token);
        var reporter = ReportProgressAsync(() => $"{_phase.Name}: {Summary(_phase)}", monitorStop.Token);

        await Task.Delay(options.Steady);
        await eventsStop.CancelAsync();
        await Task.WhenAll(fileLoops.Concat(processLoops));
        steady.Ended = DateTimeOffset.UtcNow;
        var steadyCpu = CpuSample.Describe(cpu, CpuSample.Now(), steady.Elapsed);
        var steadyMissed = Interlocked.Exchange(ref _missedScans, 0);
        var steadyEnd = await DatabaseProbe.MeasureAsync(admin);
        var (maxConnections, maxActive) = (_maxConnections, _maxActive);

        // The first scan of each node after its last change stores one more new list: the unchanged phase is measured after that.
        var settle = _phase = new Phase("settling");
        await Task.Delay(options.Interval + TimeSpan.FromSeconds(5));
        settle.Ended = DateTimeOffset.UtcNow;
        var unchangedStart = await DatabaseProbe.MeasureAsync(admin);
        var unchanged = _phase = new Phase("unchanged");
        cpu = CpuSample.Now();
        await Task.Delay(options.Unchanged);
        var unchangedEnd = await DatabaseProbe.MeasureAsync(admin);
        unchanged.Ended = unchangedEnd.At;
        var unchangedCpu = CpuSample.Describe(cpu, CpuSample.Now(), unchanged.Elapsed);
        await scansStop.CancelAsync();
        await Task.WhenAll(scanLoops);
        await monitorStop.CancelAsync();
        await connections;
        await reporter;

        var seconds = steady.Elapsed.TotalSeconds;
        Line($"STEADY: {seconds:N0} s in real time, all {_nodes.Length:N0} nodes scanning every {options.Interval.TotalSeconds:0} s (phases spread evenly, "
            + $"{_nodes.Length / options.Interval.TotalSeconds:0.0} scans/s), with file events and process events");
        LatencyTable(steady);
        var files = steady[Phase.FileEvents];
        var processes = steady[Phase.ProcessEvents];
        var scans = steady[Phase.ScanNewList].Calls + steady[Phase.ScanSameList].Calls;
        Line("  throughput (stored / target):");
        Line($"    file events     {files.Items / seconds,10:N1}/s of {options.FileRate:N0}/s ({Share(files.Items, options.FileRate * seconds)}), "
            + $"{files.Calls / seconds:N1} batches/s, {(files.Calls == 0 ? 0 : (double)files.Items / files.Calls):0.00} events per batch");
        Line($"    process execs   {steady.ProcessExecs / seconds,10:N1}/s of {options.ProcessRate:N0}/s ({Share(steady.ProcessExecs, options.ProcessRate * seconds)}), "
            + $"{processes.Items / seconds:N1} rows/s (exec rows and exit rows) in {processes.Calls / seconds:N1} batches/s");
        var expectedScans = _nodes.Length * seconds / options.Interval.TotalSeconds;
        Line($"    scans           {scans / seconds,10:N1}/s of {_nodes.Length / options.Interval.TotalSeconds:N1}/s ({Share(scans, expectedScans)}); "
            + $"{steady[Phase.ScanNewList].Calls:N0} with a new list, {steady[Phase.ScanSameList].Calls:N0} unchanged; {steadyMissed} scan slots missed (store still busy)");
        Lag("    seen-to-stored, file events (oldest event of each batch)", files.Lag());
        Lag("    seen-to-stored, process rows (oldest row of each batch)", processes.Lag());
        Line($"  connections held by the simulated agents (sampled every 5 s): at most {maxConnections}, at most {maxActive} not idle");
        Line($"  {steadyCpu}");
        Line($"  database {Bytes(steadyStart.DatabaseBytes)} -> {Bytes(steadyEnd.DatabaseBytes)}: +{Bytes(steadyEnd.DatabaseBytes - steadyStart.DatabaseBytes)} in {seconds:N0} s "
            + $"= {Bytes(PerDay(steadyEnd.DatabaseBytes - steadyStart.DatabaseBytes, steadyEnd.At - steadyStart.At))}/day at this load; "
            + $"WAL {Bytes(PerDay(steadyEnd.WalBytes - steadyStart.WalBytes, steadyEnd.At - steadyStart.At))}/day");
        Line();

        var window = unchangedEnd.At - unchangedStart.At;
        Line($"UNCHANGED TREES: scans only; one settling interval ({settle.Elapsed.TotalSeconds:N0} s, each node's last changed list stored), "
            + $"then {window.TotalSeconds:N0} s measured");
        Line("  settling interval:");
        LatencyTable(settle);
        Line("  measured window:");
        LatencyTable(unchanged);
        var scanRows = unchangedEnd.ScanRows - unchangedStart.ScanRows;
        Line($"  scans: {scanRows:N0} rows in {window.TotalSeconds:N0} s = {PerDay(scanRows, window):N0} rows/day (expected {_nodes.Length * 86400 / options.Interval.TotalSeconds:N0}); "
            + $"{Interlocked.Exchange(ref _missedScans, 0)} scan slots missed");
        var growth = unchangedEnd.DatabaseBytes - unchangedStart.DatabaseBytes;
        Line($"  database growth: +{Bytes(growth)} in {window.TotalSeconds:N0} s = {Bytes(PerDay(growth, window))}/day "
            + $"({(scanRows == 0 ? 0 : growth / (double)scanRows):N0} bytes per scan); WAL {Bytes(PerDay(unchangedEnd.WalBytes - unchangedStart.WalBytes, window))}/day");
        var tables = unchangedEnd.Tables.Keys.Where(t => unchangedEnd.Tables[t].Bytes != unchangedStart.Tables.GetValueOrDefault(t).Bytes).Order().ToList();
        foreach (var table in tables)
        {
            var delta = unchangedEnd.Tables[table].Bytes - unchangedStart.Tables.GetValueOrDefault(table).Bytes;
            Line($"    {table,-26} {(delta >= 0 ? "+" : "-")}{Bytes(Math.Abs(delta)),11} = {(delta >= 0 ? "" : "-")}{Bytes(Math.Abs(PerDay(delta, window))),11}/day (tables with indexes and TOAST)");
        }

        Line($"    {"pg_catalog",-26} {Bytes(unchangedEnd.CatalogBytes - unchangedStart.CatalogBytes),12}");
        Line($"  {unchangedCpu}");
        Line();
        return (steadyEnd, unchangedStart, unchangedEnd, steady.Ended.Value);
    }

    private async Task ScanLoopAsync(int i, DateTimeOffset start, CancellationToken stop)
    {
        var due = start + options.Interval * i / _nodes.Length;
        while (await DelayUntilAsync(due, stop))
        {
            await ScanAsync(_nodes[i], _agents[i]);
            due += options.Interval;
            for (var now = DateTimeOffset.UtcNow; due < now; due += options.Interval)
            {
                Interlocked.Increment(ref _missedScans);
            }
        }
    }

    /// <summary>One scan, as InventoryCollector makes the record and the delivery loop stores it.</summary>
    private async Task ScanAsync(SimulatedNode node, Agent agent)
    {
        var snapshot = node.Snapshot();
        var collectedAt = DateTimeOffset.UtcNow;
        var record = new ScanRecord(Guid.CreateVersion7(collectedAt), node.Name, SimulatedNode.MountPath, collectedAt, new ScanResult(snapshot, 0, 0, ScanDuration));
        var expected = node.LastStoredHash is { } last && last.AsSpan().SequenceEqual(snapshot.ContentHash) ? Phase.ScanSameList : Phase.ScanNewList;
        var (stored, _) = await StoreAsync(expected, snapshot.Count, () => agent.Inventory.StoreAsync(record, CancellationToken.None),
            outcome => outcome.NewList ? Phase.ScanNewList : Phase.ScanSameList, null);
        if (stored)
        {
            node.LastStoredHash = snapshot.ContentHash;
        }
    }

    /// <summary>A node's changes: each round (about a second) the changes made since the last one, stored as one batch.</summary>
    private async Task FileLoopAsync(int i, DateTimeOffset start, CancellationToken stop)
    {
        var node = _nodes[i];
        var random = new Random(i * 3 + 1);
        var perSecond = options.FileRate / _nodes.Length;
        var due = start + Round * i / _nodes.Length;
        var last = due - Round;
        while (await DelayUntilAsync(due, stop))
        {
            var now = DateTimeOffset.UtcNow;
            var count = Poisson(random, perSecond * (now - last).TotalSeconds);
            last = now;
            if (count > 0)
            {
                var batch = node.Change(count, random);
                await StoreAsync(Phase.FileEvents, batch.Events.Count, async () =>
                {
                    await _agents[i].Changes.StoreAsync(batch, CancellationToken.None);
                    return true;
                }, null, () => (DateTimeOffset.UtcNow - batch.Events[0].OccurredAt).TotalSeconds);
            }

            due = Next(due);
        }
    }

    /// <summary>A node's processes: each round, the rows of the execs and exits seen since the last one, as one batch.</summary>
    private async Task ProcessLoopAsync(int i, DateTimeOffset start, CancellationToken stop)
    {
        var processes = new SimulatedProcesses(_nodes[i]);
        var random = new Random(i * 3 + 2);
        var sessionsPerSecond = options.ProcessRate / SimulatedProcesses.ExecsPerSession / _nodes.Length;
        var due = start + Round * i / _nodes.Length;
        var last = due - Round;
        while (await DelayUntilAsync(due, stop))
        {
            var now = DateTimeOffset.UtcNow;
            var rows = processes.Round(Poisson(random, sessionsPerSecond * (now - last).TotalSeconds), now, random, out var execs);
            last = now;
            if (rows.Count > 0)
            {
                var batch = new ProcessBatch(_nodes[i].Name, SimulatedNode.MountPath, rows);
                var oldest = rows.Min(r => r.EndedAt ?? r.StartedAt);
                var phase = _phase;
                var (stored, _) = await StoreAsync(Phase.ProcessEvents, rows.Count, async () =>
                {
                    await _agents[i].Processes.StoreAsync(batch, CancellationToken.None);
                    return true;
                }, null, () => (DateTimeOffset.UtcNow - oldest).TotalSeconds);
                if (stored)
                {
                    Interlocked.Add(ref phase.ProcessExecs, execs);
                }
            }

            due = Next(due);
        }
    }

    /// <summary>
    /// One record stored as the delivery loop stores it: retried after the agent's backoff while the error is transient,
    /// given up on a permanent one (or after <see cref="MaxAttempts"/>). Each successful call's time is one latency sample.
    /// </summary>
    private async Task<(bool Stored, T? Value)> StoreAsync<T>(string kind, long items, Func<Task<T>> store, Func<T, string>? kindOf, Func<double>? lag)
    {
        for (var attempt = 1; ; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                var value = await store();
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                _phase[kindOf?.Invoke(value) ?? kind].Stored(elapsed, items, lag?.Invoke());
                return (true, value);
            }
            catch (Exception e)
            {
                var retry = attempt < MaxAttempts && !RetryPolicy.IsPermanent(e);
                _phase[kind].Failed(e, retry);
                if (!retry)
                {
                    return (false, default);
                }

                await _retry.DelayAsync(_retry.NextDelay(attempt), CancellationToken.None);
            }
        }
    }

    private async Task QueriesAsync(NpgsqlDataSource admin, DateTimeOffset steadyEnd)
    {
        Progress("ANALYZE, then the queries");
        await using (var analyze = admin.CreateCommand("ANALYZE"))
        {
            analyze.CommandTimeout = 0;
            await analyze.ExecuteNonQueryAsync();
        }

        var node = _nodes[_nodes.Length / 2];
        var (dir, _, _, container, _, _) = node.Workspace(0);
        var since = steadyEnd.AddMinutes(-10).ToString("yyyy-MM-dd HH:mm:ss+00", Invariant);
        var hourAgo = steadyEnd.AddHours(-1).ToString("yyyy-MM-dd HH:mm:ss+00", Invariant);
        var minuteAgo = steadyEnd.AddMinutes(-1).ToString("yyyy-MM-dd HH:mm:ss+00", Invariant);
        var queries = new List<(string Name, string Source, string Sql)>
        {
            ("file_monitor: the original contract", "built-in", "SELECT * FROM file_monitor ORDER BY CollectedAt DESC LIMIT 4"),
            ("file_monitor: one node's latest scan", "built-in", $"SELECT * FROM file_monitor WHERE nodename = '{node.Name}' ORDER BY collectedat DESC LIMIT 1"),
            ("scans: every node's latest scan", "built-in", "SELECT DISTINCT ON (node_name) node_name, collected_at, list_id FROM scans ORDER BY node_name, collected_at DESC"),
            ("file_entries: one node's latest scan", "built-in",
                $"SELECT * FROM file_entries WHERE scan_id = (SELECT scan_id FROM scans WHERE node_name = '{node.Name}' ORDER BY collected_at DESC LIMIT 1)"),
            ("file_entries: one workspace, latest scan", "built-in",
                $"SELECT * FROM file_entries WHERE scan_id = (SELECT scan_id FROM scans WHERE node_name = '{node.Name}' ORDER BY collected_at DESC LIMIT 1) AND path LIKE '{dir}/%'"),
            ("file_versions: one file's history", "built-in",
                $"SELECT * FROM file_versions WHERE node_name = '{node.Name}' AND path = '{dir}/hw1/file01.c' ORDER BY occurred_at"),
            ("file_changes_since: one node, 10 min", "built-in", $"SELECT * FROM file_changes_since('{node.Name}', '{since}')"),
            ("file_events: all nodes, last minute", "built-in", $"SELECT count(*) FROM file_events WHERE occurred_at >= '{minuteAgo}'"),
            ("file_state: one workspace", "built-in",
                $"SELECT * FROM file_state WHERE node_name = '{node.Name}' AND mount_path = '{SimulatedNode.MountPath}' AND path LIKE '{dir}/%'"),
            ("builds_and_runs: one node, last hour", "built-in", $"SELECT * FROM builds_and_runs WHERE node_name = '{node.Name}' AND started_at >= '{hourAgo}'"),
            ("failing_builds: all nodes, last hour", "built-in", $"SELECT * FROM failing_builds WHERE started_at >= '{hourAgo}'"),
            ("processes_in_container: one student", "built-in", $"SELECT * FROM processes_in_container('{container}')"),
        };
        var file = options.QueriesFile;
        if (file is not null && File.Exists(file))
        {
            queries.AddRange(DatabaseProbe.ReadQueries(file).Select(q => (q.Name, Path.GetFileName(file), q.Sql)));
        }

        Line($"QUERIES: EXPLAIN (ANALYZE, BUFFERS) of each, 5 runs in a row after ANALYZE, median execution (and planning) time; node {node.Name}, workspace {dir}");
        Line(file is not null && File.Exists(file) ? $"  with the queries of {file}" : $"  ({file ?? "no queries file given"}: not found, built-in queries only)");
        foreach (var (name, source, sql) in queries)
        {
            var timing = await DatabaseProbe.TimeAsync(admin, name, source, sql, 5);
            var runs = string.Join(' ', timing.ExecutionMs.Select(ms => ms.ToString("0.0", Invariant)));
            Line(timing.Error is null
                ? $"  {name,-44} {DatabaseProbe.Median(timing.ExecutionMs),10:N1} ms  (planning {DatabaseProbe.Median(timing.PlanningMs):0.0} ms, {timing.Rows:N0} rows; runs {runs}) [{source}]"
                : $"  {name,-44} failed: {timing.Error} [{source}]");
        }

        Line();
    }

    /// <summary>The templates the attribution views need, when the schema has them (migration 0004).</summary>
    private static async Task<string> SeedTemplatesAsync(NpgsqlDataSource admin)
    {
        await using var exists = admin.CreateCommand("SELECT to_regclass('attribution_templates') IS NOT NULL");
        if (await exists.ExecuteScalarAsync() is not true)
        {
            return "no attribution_templates table in this schema";
        }

        await using var insert = admin.CreateCommand(
            """
            INSERT INTO attribution_templates (name, applies_to, pattern, priority)
            VALUES ('workspace', 'path', '{course}-{student}/{assignment}/**', 10), ('jcode', 'hostname', 'jcode-{subject}-{course}-{student}', 20)
            ON CONFLICT DO NOTHING
            """);
        try
        {
            var rows = await insert.ExecuteNonQueryAsync();
            return $"attribution_templates: {rows} inserted (workspace on paths, priority 10; jcode on hostnames, priority 20)";
        }
        catch (PostgresException e)
        {
            return $"attribution_templates could not be seeded: {e.SqlState}: {e.MessageText}";
        }
    }

    private static async Task<string> ServerSettingsAsync(NpgsqlDataSource admin)
    {
        string[] names = ["server_version", "max_connections", "shared_buffers", "max_wal_size", "checkpoint_timeout", "synchronous_commit", "fsync", "wal_compression", "autovacuum"];
        var values = new List<string>();
        await using var connection = await admin.OpenConnectionAsync();
        foreach (var name in names)
        {
            await using var command = new NpgsqlCommand($"SHOW {name}", connection);
            values.Add($"{name}={await command.ExecuteScalarAsync()}");
        }

        await using (var lz4 = new NpgsqlCommand("SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'file_list_chunks'::regclass AND attname = 'paths'", connection))
        {
            values.Add($"lists compressed with {(await lz4.ExecuteScalarAsync() is "l" ? "lz4" : "pglz")}");
        }

        return string.Join(", ", values);
    }

    private void Header(DateTimeOffset startedAt, string server, string templates)
    {
        var memory = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var entries = options.StudentsPerNode * (1 + SimulatedNode.AssignmentsPerStudent * (1 + SimulatedNode.FilesPerAssignment));
        var files = options.StudentsPerNode * SimulatedNode.AssignmentsPerStudent * SimulatedNode.FilesPerAssignment;
        Line($"Node Monitor: scale benchmark, {options.Nodes:N0} simulated agents against one PostgreSQL        {startedAt:yyyy-MM-dd HH:mm:ss} UTC");
        Line($"machine:    {Environment.ProcessorCount} CPUs, {memory.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]} kB RAM, load average {File.ReadAllText("/proc/loadavg").Trim()} at the start");
        if (options.Label is not null)
        {
            Line($"            {options.Label}");
        }

        Line($"postgres:   {server}");
        Line($"agents:     {options.Nodes:N0} in this process, each with {(options.SharedPool > 0 ? $"its stores over ONE shared data source (Maximum Pool Size={options.SharedPool})" : $"its own NpgsqlDataSource (Maximum Pool Size={options.PoolSize})")},");
        Line("            built as AgentDatabase builds the agent's (type loading off, application 'nodeagent'; no telemetry), and the agent's");
        Line("            SchemaMigrator, InventoryStore, ChangeStore and ProcessStore; a failed store is retried with RetryPolicy's backoff");
        Line($"workload:   per node {options.StudentsPerNode} students ({{course}}-{{student}}: cs101 cs102 ds201 se301, ids 000000-{options.Nodes * options.StudentsPerNode - 1:D6}, each node its own)");
        Line($"            x {SimulatedNode.AssignmentsPerStudent} hw{{k}} x {SimulatedNode.FilesPerAssignment} fileNN.c = {files:N0} files ({entries:N0} entries with the directories), "
            + $"{(long)files * options.Nodes:N0} files in all; C sources of {options.ContentBytes / 2}-{options.ContentBytes * 3 / 2} bytes");
        Line($"            scans every {options.Interval.TotalSeconds:0} s per node, phases spread evenly; a tree is unchanged unless it had file events since its last scan");
        Line($"            file events {options.FileRate:N0}/s in all (90 % modify, 5 % create, 5 % delete, each with its content kept), one batch per node per ~1 s round");
        Line($"            processes {options.ProcessRate:N0} execs/s in all (gcc in the student's jcode container, then ./a.out unless the build failed, 10 %),");
        Line("            an exec row when seen and an exit row completing it, one batch per node per ~1 s round");
        Line($"            steady {options.Steady.TotalMinutes:0.#} min, then unchanged trees {options.Unchanged.TotalMinutes:0.#} min (after one settling interval), real time");
        Line($"            {templates}");
        Line();
        Console.Write(_report.ToString());
    }

    private void SizeTables(SizeSnapshot steadyStart, SizeSnapshot steadyEnd, SizeSnapshot unchangedStart, SizeSnapshot unchangedEnd)
    {
        Line("DATABASE SIZE (pg_total_relation_size: table, indexes, TOAST; rows: pg_stat n_live_tup estimates, scans counted)");
        Line($"  {"",-26} {"steady start",14} {"steady end",14} {"unchanged end",14} {"rows at end",14}");
        foreach (var table in unchangedEnd.Tables.Keys.Order())
        {
            var rows = table == "scans" ? unchangedEnd.ScanRows : unchangedEnd.Tables[table].Rows;
            Line($"  {table,-26} {Bytes(steadyStart.Tables.GetValueOrDefault(table).Bytes),14} {Bytes(steadyEnd.Tables[table].Bytes),14} {Bytes(unchangedEnd.Tables[table].Bytes),14} {rows,14:N0}");
        }

        Line($"  {"pg_catalog",-26} {Bytes(steadyStart.CatalogBytes),14} {Bytes(steadyEnd.CatalogBytes),14} {Bytes(unchangedEnd.CatalogBytes),14}");
        Line($"  {"database",-26} {Bytes(steadyStart.DatabaseBytes),14} {Bytes(steadyEnd.DatabaseBytes),14} {Bytes(unchangedEnd.DatabaseBytes),14}");
        Line();
    }

    private void LatencyTable(Phase phase)
    {
        Line($"  {"store latency, ms",-22} {"calls",9} {"items",12} {"p50",8} {"p90",8} {"p99",8} {"max",9}  {"retried",7} {"dropped",7}");
        foreach (var (kind, stats) in phase.Kinds())
        {
            var l = stats.Latency();
            Line($"  {kind,-22} {stats.Calls,9:N0} {stats.Items,12:N0} {l.P50,8:N1} {l.P90,8:N1} {l.P99,8:N1} {l.Max,9:N1}  {stats.Retried,7:N0} {stats.Dropped,7:N0}");
            foreach (var (reason, count) in stats.Errors().Take(5))
            {
                Line($"      {count,7:N0} x {reason}");
            }
        }
    }

    private void Lag(string label, Percentiles lag) =>
        Line($"{label}: p50 {lag.P50:0.00} s, p99 {lag.P99:0.00} s, max {lag.Max:0.00} s");

    private static string Summary(Phase phase) => string.Join(", ", phase.Kinds().Select(k => $"{k.Kind} {k.Stats.Calls:N0}"));

    private int _maxConnections;
    private int _maxActive;

    private async Task MonitorConnectionsAsync(NpgsqlDataSource admin, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var (total, active) = await DatabaseProbe.ConnectionsAsync(admin);
                _maxConnections = Math.Max(_maxConnections, total);
                _maxActive = Math.Max(_maxActive, active);
                await Task.Delay(TimeSpan.FromSeconds(5), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (NpgsqlException e)
            {
                Progress($"monitor: {e.Message}");
            }
        }
    }

    private static async Task ReportProgressAsync(Func<string> describe, CancellationToken stop)
    {
        var started = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(30), stop);
                Progress($"{started.Elapsed:mm\\:ss} {describe()}");
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<bool> DelayUntilAsync(DateTimeOffset due, CancellationToken stop)
    {
        var wait = due - DateTimeOffset.UtcNow;
        try
        {
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, stop);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        return !stop.IsCancellationRequested;
    }

    /// <summary>The next round, or now when the last store ran past it (its events then wait in the next, larger batch).</summary>
    private static DateTimeOffset Next(DateTimeOffset due)
    {
        var next = due + Round;
        var now = DateTimeOffset.UtcNow;
        return next < now ? now : next;
    }

    private static int Poisson(Random random, double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }

        if (mean > 50)
        {
            // Normal approximation (Box-Muller): exp(-mean) underflows the product method long before this matters.
            var gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            return Math.Max(0, (int)Math.Round(mean + Math.Sqrt(mean) * gaussian));
        }

        var limit = Math.Exp(-mean);
        var count = 0;
        for (var product = random.NextDouble(); product > limit; product *= random.NextDouble())
        {
            count++;
        }

        return count;
    }

    private static double PerDay(double amount, TimeSpan over) => amount * 86400 / Math.Max(1, over.TotalSeconds);

    private static long PerDay(long amount, TimeSpan over) => (long)PerDay((double)amount, over);

    private static string Share(double stored, double target) => target <= 0 ? "-" : $"{100 * stored / target:0.0} %";

    private static string Bytes(double bytes) => Math.Abs(bytes) switch
    {
        >= 1L << 40 => $"{bytes / (1L << 40):0.00} TiB",
        >= 1L << 30 => $"{bytes / (1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / (1L << 10):0.0} KiB",
        _ => $"{bytes:0} B",
    };

    private void Line(string text = "") => _report.Append(text).Append('\n');

    private static void Progress(string text) => Console.WriteLine($"[{DateTimeOffset.UtcNow:HH:mm:ss}] {text}");
}
