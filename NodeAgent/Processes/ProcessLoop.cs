using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Processes;

/// <summary>
/// Reads the process-event connector on a thread of its own (it never waits for the database: the spool does), reads
/// each kept process's details from /proc at its exec (at once: a short-lived process is gone soon), and hands the
/// rows of each round to the spool: new processes (so a long-running one is visible while it runs) and ended ones.
/// Where the connector cannot be used it says so once, and the other capabilities go on.
/// </summary>
internal sealed partial class ProcessLoop(
    AgentSettings agent,
    ProcessesSettings settings,
    ProcessesMetrics metrics,
    Spool<ProcessBatch> spool,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ProcessLoop> logger) : BackgroundService
{
    private const int PollMilliseconds = 20;
    private const int BatchMaxRows = 5000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await lifetime.WaitForStartedAsync(stoppingToken))
        {
            return;
        }

        await Task.Factory.StartNew(() => Run(stoppingToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Run(CancellationToken stoppingToken)
    {
        ProcessConnector connector;
        try
        {
            connector = ProcessConnector.Open(settings.ReceiveBufferBytes);
        }
        catch (ProcessConnectorException e)
        {
            LogUnavailable(logger, e.Message);
            return;
        }

        using (connector)
        {
            LogListening(logger);
            var reader = new ProcessReader();
            var classifier = new ProcessClassifier(settings.Include, settings.Compile, settings.Run, agent.MountPath);
            var running = new Dictionary<int, ProcessRow>();
            var exits = new HeldExits(time);
            var rows = new List<ProcessRow>();
            var events = new List<ProcessEvent>();
            var lastSequence = new Dictionary<uint, uint>();
            var buffer = new byte[256 * 1024];
            var lostReported = false;
            while (!stoppingToken.IsCancellationRequested)
            {
                events.Clear();
                var received = connector.Receive(buffer, PollMilliseconds, events);
                if (received == -ProcessConnector.ENOBUFS)
                {
                    metrics.Lost.Add(1);
                    if (!lostReported)
                    {
                        lostReported = true;
                        LogLost(logger, settings.ReceiveBufferBytes);
                    }
                }

                var now = time.GetUtcNow();
                foreach (var e in events)
                {
                    if (lastSequence.TryGetValue(e.Cpu, out var last) && e.Sequence > last + 1)
                    {
                        metrics.Lost.Add(e.Sequence - last - 1);
                        if (!lostReported)
                        {
                            lostReported = true;
                            LogLost(logger, settings.ReceiveBufferBytes);
                        }
                    }

                    lastSequence[e.Cpu] = e.Sequence;
                    if (e.Kind == ProcessEventKind.Exec)
                    {
                        // A process gone before it could be read (it exited at once) is still recorded, with what
                        // is missing said: whether it would have been kept cannot be known.
                        var details = reader.Read(e.Tgid, settings.ArgvMaxBytes);
                        var executable = details.Executable ?? [];
                        if (exits.TryResume(e.Tgid, out var replacedByExec))
                        {
                            running[e.Tgid] = replacedByExec;
                        }

                        if (details.Executable is not null && !classifier.Keeps(executable))
                        {
                            // An earlier image of this process that was kept ends here (it became something else).
                            if (running.Remove(e.Tgid, out var replaced))
                            {
                                rows.Add(replaced with { EndedAt = now });
                            }

                            continue;
                        }

                        var kind = details.Executable is null ? ProcessKind.Other : classifier.Classify(executable);
                        var parent = details.ParentPid is { } parentPid ? running.GetValueOrDefault(parentPid) : null;
                        var row = new ProcessRow(Guid.CreateVersion7(now), e.Tgid, now, details, kind,
                            details.Arguments is { } arguments ? ProcessClassifier.SourceFiles(arguments, kind, executable, details.WorkingDirectory) : [],
                            null, null, null, parent?.ProcessId, parent?.Kind);
                        if (running.Remove(e.Tgid, out var previous))
                        {
                            rows.Add(previous with { EndedAt = now });
                        }

                        running[e.Tgid] = row;
                        rows.Add(row);
                        var name = details.Executable is null ? "unknown" : System.Text.Encoding.UTF8.GetString(executable.AsSpan(executable.AsSpan().LastIndexOf((byte)'/') + 1));
                        metrics.ProcessEvents.Add(1, new KeyValuePair<string, object?>("process_name", details.Executable is null ? "unknown" : classifier.MetricName(executable)));
                        LogKept(logger, e.Tgid, name, kind, details.Missing);
                        if (details.Missing != ProcessReadFlags.None)
                        {
                            metrics.EnrichmentMisses.Add(1);
                        }
                    }
                    else if (e.IsProcessExit && running.Remove(e.Tgid, out var ended))
                    {
                        exits.Ended(ended with { EndedAt = now, ExitCode = e.ExitCode, Signal = e.Signal }, rows);
                    }
                    else if (e.Kind == ProcessEventKind.Fork && e.Pid == e.Tgid)
                    {
                        exits.Reused(e.Tgid, rows);
                    }
                }

                exits.Release(rows);

                if (rows.Count > 0 && (spool.Count == 0 || rows.Count >= BatchMaxRows))
                {
                    spool.Add(new ProcessBatch(agent.NodeName, agent.MountPath, rows));
                    rows = [];
                }
            }

            exits.Release(rows, all: true);
            if (rows.Count > 0)
            {
                spool.Add(new ProcessBatch(agent.NodeName, agent.MountPath, rows));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Recording process activity from the kernel's process-event connector")]
    private static partial void LogListening(ILogger logger);

    // Its arguments are not logged: they may hold secrets.
    [LoggerMessage(Level = LogLevel.Debug, Message = "Kept process {Pid}: {Executable}, {Kind}; not read from /proc: {Missing}")]
    private static partial void LogKept(ILogger logger, int pid, string executable, ProcessKind kind, ProcessReadFlags missing);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Process activity is not recorded: {Reason}. It needs the host's network and PID namespaces (hostNetwork and hostPID: the kernel sends process events only into the host's network namespace) and CAP_NET_ADMIN; the other capabilities go on")]
    private static partial void LogUnavailable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The kernel dropped process events (its receive buffer of {Bytes} bytes was full, or its sequence skipped): counted in nodemonitor_processes_lost_total, logged once; raise Agent:Processes:ReceiveBufferBytes")]
    private static partial void LogLost(ILogger logger, int bytes);
}
