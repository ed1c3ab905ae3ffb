using Microsoft.Extensions.Time.Testing;
using NodeAgent.Processes;

namespace NodeAgent.Tests.Processes;

/// <summary>
/// Which exits are final: the real race (a thread's exec after the kernel ended its leader, other processes' events
/// in between) is in <see cref="ProcessEventsTests"/>; here its rule, event by event, on a clock the test moves.
/// </summary>
public sealed class HeldExitsTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly List<ProcessRow> _rows = [];

    private static ProcessRow Ended(int pid, int? exitCode, int? signal) =>
        new(Guid.CreateVersion7(), pid, DateTimeOffset.UnixEpoch, new ProcessDetails("/usr/bin/python3"u8.ToArray(), null, false, null, null, null, null, null, null, null, null, ProcessReadFlags.None),
            ProcessKind.Run, [], DateTimeOffset.UnixEpoch.AddSeconds(1), exitCode, signal);

    [Fact]
    public void An_exit_0_followed_within_the_hold_by_an_exec_of_its_pid_is_a_replacement_and_the_process_runs_on()
    {
        var exits = new HeldExits(_time);
        var ended = Ended(41, 0, null);

        exits.Ended(ended, _rows);
        _time.Advance(HeldExits.Hold - TimeSpan.FromMilliseconds(1));
        exits.Release(_rows);

        Assert.Empty(_rows);
        Assert.True(exits.TryResume(41, out var running));
        Assert.Equal((ended.ProcessId, (DateTimeOffset?)null, (int?)null, (int?)null), (running.ProcessId, running.EndedAt, running.ExitCode, running.Signal));
        Assert.False(exits.TryResume(41, out _));
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(null, 9)]
    public void An_exit_that_may_be_an_execs_is_final_once_the_hold_has_passed_without_one(int? exitCode, int? signal)
    {
        var exits = new HeldExits(_time);
        var ended = Ended(42, exitCode, signal);

        exits.Ended(ended, _rows);
        _time.Advance(HeldExits.Hold);
        exits.Release(_rows);

        Assert.Same(ended, Assert.Single(_rows));
        Assert.False(exits.TryResume(42, out _));
    }

    [Theory]
    [InlineData(3, null)]
    [InlineData(null, 11)]
    public void Any_other_exit_is_final_at_once(int? exitCode, int? signal)
    {
        var exits = new HeldExits(_time);
        var ended = Ended(43, exitCode, signal);

        exits.Ended(ended, _rows);

        Assert.Same(ended, Assert.Single(_rows));
        Assert.Equal(0, exits.Count);
    }

    [Fact]
    public void A_new_process_under_the_pid_of_a_held_exit_makes_that_exit_final_at_once()
    {
        var exits = new HeldExits(_time);
        var ended = Ended(44, 0, null);
        exits.Ended(ended, _rows);

        exits.Reused(44, _rows);

        Assert.Same(ended, Assert.Single(_rows));
        Assert.False(exits.TryResume(44, out _));
    }

    [Fact]
    public void At_shutdown_every_held_exit_is_final()
    {
        var exits = new HeldExits(_time);
        exits.Ended(Ended(45, 0, null), _rows);
        exits.Ended(Ended(46, null, 9), _rows);

        exits.Release(_rows, all: true);

        Assert.Equal([45, 46], _rows.Select(r => r.Pid).Order());
    }
}
