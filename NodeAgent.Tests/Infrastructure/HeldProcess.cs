using System.Diagnostics;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>
/// A process of the test's own that cannot end until it is released, so a test can wait until the agent has read it
/// from /proc before it goes. A process that ends at once may be gone before any reader gets to it: the agent records
/// it anyway with what was missing said (the reader's tests cover that); the tests using this one are about what is
/// stored for a process that was read, and on a busy machine "at once" can outlast the agent's read.
/// </summary>
public sealed class HeldProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string? _fifoDirectory;

    private HeldProcess(Process process, string? fifoDirectory)
    {
        _process = process;
        _fifoDirectory = fifoDirectory;
    }

    public int Id => _process.Id;

    /// <summary>python3 that runs <paramref name="code"/> once its standard input is closed.</summary>
    public static HeldProcess Python(string cwd, string code)
    {
        var start = new ProcessStartInfo("python3") { WorkingDirectory = cwd, RedirectStandardInput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import sys; sys.stdin.read(); " + code);
        return new HeldProcess(Process.Start(start)!, fifoDirectory: null);
    }

    /// <summary>
    /// gcc with <paramref name="arguments"/>, plus <c>-include</c> of an empty header that is a FIFO outside the tree:
    /// its compiler blocks opening it (and the driver waits for its compiler) until released. <c>-include</c>'s value
    /// is not a source file, so what the agent must find is what the arguments name.
    /// </summary>
    public static HeldProcess Gcc(string cwd, params string[] arguments)
    {
        var directory = Directory.CreateTempSubdirectory("nodeagent-hold-").FullName;
        var fifo = Path.Combine(directory, "hold.h");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            mkfifo.WaitForExit();
        }

        var start = new ProcessStartInfo("gcc") { WorkingDirectory = cwd, RedirectStandardError = true };
        start.ArgumentList.Add("-include");
        start.ArgumentList.Add(fifo);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return new HeldProcess(Process.Start(start)!, directory);
    }

    /// <summary>Waits until the agent (started with <see cref="AgentEnvironment"/>) says at Debug that it read this process.</summary>
    public Task WaitReadByAsync(AgentProcess agent, TimeSpan patience) =>
        agent.WaitForLinesAsync($"Kept process {Id}:", 1, patience);

    /// <summary>The agent's settings that make it say which processes it read.</summary>
    public static (string Key, string? Value) AgentEnvironment => ("Logging__LogLevel__NodeAgent.Processes.ProcessLoop", "Debug");

    /// <summary>Lets the process finish and returns its exit code as .NET reports it.</summary>
    public async Task<int> ReleaseAsync(TimeSpan patience)
    {
        using var cancellation = new CancellationTokenSource(patience);
        if (_fifoDirectory is null)
        {
            _process.StandardInput.Close();
        }
        else
        {
            // Opening a FIFO to write waits for its reader, the compiler blocked opening it: writing nothing gives it EOF.
            var fifo = Path.Combine(_fifoDirectory, "hold.h");
            await Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Write).Dispose(), CancellationToken.None).WaitAsync(cancellation.Token);
        }

        var error = _process.StandardError.ReadToEndAsync(cancellation.Token);
        await _process.WaitForExitAsync(cancellation.Token);
        _ = await error;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (_fifoDirectory is not null)
        {
            Directory.Delete(_fifoDirectory, recursive: true);
        }
    }
}
