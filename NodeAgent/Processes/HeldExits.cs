namespace NodeAgent.Processes;

/// <summary>
/// Exits of processes that may not have ended. A thread that is not the leader calling exec first has the kernel end
/// every other thread, the leader with exit code 0 (SIGKILL before Linux 5.16), which the connector reports as the
/// process's exit; the exec then comes under the leader's pid once the exec-ing thread runs again, which on a busy
/// node can be many events and milliseconds later. So such an exit is held for <see cref="Hold"/>: an exec of the
/// same pid by then means the process was replaced (it ends at the exec with no exit code, as when the leader itself
/// execs); a new process under that pid (its fork) means it really ended. Any other exit is final at once.
/// </summary>
internal sealed class HeldExits(TimeProvider time)
{
    public static readonly TimeSpan Hold = TimeSpan.FromSeconds(1);

    private const int SigKill = 9;

    private readonly Dictionary<int, (ProcessRow Row, long Since)> _held = [];

    public int Count => _held.Count;

    /// <summary>Adds the ended process to <paramref name="rows"/> now, or holds it when its exit may be an exec's.</summary>
    public void Ended(ProcessRow ended, List<ProcessRow> rows)
    {
        if (ended is { ExitCode: 0 } or { Signal: SigKill })
        {
            _held[ended.Pid] = (ended, time.GetTimestamp());
        }
        else
        {
            rows.Add(ended);
        }
    }

    /// <summary>The process an exec under <paramref name="pid"/> replaces, running again, if its exit was held.</summary>
    public bool TryResume(int pid, out ProcessRow running)
    {
        if (_held.Remove(pid, out var held))
        {
            running = held.Row with { EndedAt = null, ExitCode = null, Signal = null };
            return true;
        }

        running = null!;
        return false;
    }

    /// <summary>A new process took <paramref name="pid"/>: the one held under it ended as its exit said.</summary>
    public void Reused(int pid, List<ProcessRow> rows)
    {
        if (_held.Remove(pid, out var held))
        {
            rows.Add(held.Row);
        }
    }

    /// <summary>Adds the exits held for <see cref="Hold"/> or longer (all of them when <paramref name="all"/>).</summary>
    public void Release(List<ProcessRow> rows, bool all = false)
    {
        if (_held.Count == 0)
        {
            return;
        }

        List<int>? due = null;
        foreach (var (pid, held) in _held)
        {
            if (all || time.GetElapsedTime(held.Since) >= Hold)
            {
                (due ??= []).Add(pid);
            }
        }

        foreach (var pid in due ?? [])
        {
            _held.Remove(pid, out var held);
            rows.Add(held.Row);
        }
    }
}
