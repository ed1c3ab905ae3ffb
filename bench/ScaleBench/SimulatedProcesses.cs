using System.Text;
using NodeAgent.Processes;

namespace ScaleBench;

/// <summary>
/// One node's kept processes: students compiling their assignment with gcc in their jcode container and, when it
/// built, running the program. Each process gives the rows ProcessLoop would: one when its exec is seen (running),
/// one when it ends (the same process id: the store completes the stored row); both in the same batch when it ended
/// within the round.
/// </summary>
internal sealed class SimulatedProcesses(SimulatedNode node)
{
    private const double FailedBuildShare = 0.1;

    private static readonly byte[] Compiler = "/usr/bin/x86_64-linux-gnu-gcc-12"u8.ToArray();
    private static readonly byte[] Shell = "/usr/bin/bash"u8.ToArray();

    private readonly List<Step> _scheduled = [];
    private int _nextPid = 1000;

    /// <summary>Execs per session: a compile, and a run unless the build failed.</summary>
    public const double ExecsPerSession = 2 - FailedBuildShare;

    /// <summary>Starts <paramref name="sessions"/> builds within the last second; returns the rows due by now.</summary>
    public List<ProcessRow> Round(int sessions, DateTimeOffset now, Random random, out int execs)
    {
        for (var i = 0; i < sessions; i++)
        {
            _scheduled.Add(new Step(now - TimeSpan.FromMilliseconds(random.Next(1000)), StepKind.CompileExec, null, random.Next(node.Students),
                1 + random.Next(SimulatedNode.AssignmentsPerStudent)));
        }

        var rows = new List<ProcessRow>();
        execs = 0;
        while (true)
        {
            var due = -1;
            for (var i = 0; i < _scheduled.Count; i++)
            {
                if (_scheduled[i].At <= now && (due < 0 || _scheduled[i].At < _scheduled[due].At))
                {
                    due = i;
                }
            }

            if (due < 0)
            {
                return rows;
            }

            var step = _scheduled[due];
            _scheduled.RemoveAt(due);
            switch (step.Kind)
            {
                case StepKind.CompileExec:
                case StepKind.RunExec:
                    var row = Exec(step, random);
                    rows.Add(row);
                    execs++;
                    var runs = step.Kind == StepKind.CompileExec
                        ? TimeSpan.FromMilliseconds(200 + random.Next(1300))
                        : TimeSpan.FromMilliseconds(10 + random.Next(2000));
                    _scheduled.Add(step with { At = step.At + runs, Kind = step.Kind + 1, Row = row });
                    break;
                case StepKind.CompileExit:
                    var built = random.NextDouble() >= FailedBuildShare;
                    rows.Add(step.Row! with { EndedAt = step.At, ExitCode = built ? 0 : 1 });
                    if (built)
                    {
                        _scheduled.Add(step with { At = step.At + TimeSpan.FromMilliseconds(300 + random.Next(3000)), Kind = StepKind.RunExec, Row = null });
                    }

                    break;
                case StepKind.RunExit:
                    var roll = random.NextDouble();
                    rows.Add(roll < 0.05
                        ? step.Row! with { EndedAt = step.At, Signal = 11 }
                        : step.Row! with { EndedAt = step.At, ExitCode = roll < 0.15 ? 1 : 0 });
                    break;
            }
        }
    }

    private ProcessRow Exec(Step step, Random random)
    {
        var (dir, course, id, container, podUid, uid) = node.Workspace(step.Student);
        var cwd = Encoding.UTF8.GetBytes($"{SimulatedNode.MountPath}/{dir}/hw{step.Assignment}");
        var pid = Interlocked.Increment(ref _nextPid) % 4_000_000;
        var compile = step.Kind == StepKind.CompileExec;
        IReadOnlyList<byte[]> arguments = compile
            ? [.. new[] { "gcc", "-Wall", "-O2", "-o", "a.out" }.Concat(Enumerable.Range(1, 1 + random.Next(3)).Select(f => $"file{f:D2}.c")).Select(Encoding.UTF8.GetBytes)]
            : ["./a.out"u8.ToArray()];
        var executable = compile ? Compiler : [.. cwd, .. "/a.out"u8];
        var kind = compile ? ProcessKind.Compile : ProcessKind.Run;
        var details = new ProcessDetails(executable, arguments, false, cwd, uid, uid, pid - 1, Shell, container, podUid,
            $"jcode-{(course == "ds201" ? "py" : "c")}-{course}-{id}", ProcessReadFlags.None);
        return new ProcessRow(Guid.CreateVersion7(step.At), pid, step.At, details, kind,
            ProcessClassifier.SourceFiles(arguments, kind, executable, cwd), null, null, null);
    }

    private enum StepKind
    {
        CompileExec,
        CompileExit,
        RunExec,
        RunExit,
    }

    private sealed record Step(DateTimeOffset At, StepKind Kind, ProcessRow? Row, int Student, int Assignment);
}
