using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>The real agent as a child process (the build output of NodeAgent), with its output captured.</summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _lineSignal = new(0);

    private AgentProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Collect(e.Data);
        process.ErrorDataReceived += (_, e) => Collect(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string AgentAssembly => Path.Combine(AppContext.BaseDirectory, "NodeAgent.dll");

    /// <summary>A native agent to run instead of the JIT build (NODEAGENT_TEST_BINARY), e.g. the NativeAOT publish.</summary>
    public static string? NativeAgent => Environment.GetEnvironmentVariable("NODEAGENT_TEST_BINARY") is { Length: > 0 } path ? Path.GetFullPath(path) : null;

    public IReadOnlyList<string> Lines => [.. _lines];

    public string Output => string.Join('\n', _lines);

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>The environment of an agent under test: its database, node "node-under-test", its directory, and more.</summary>
    public static Dictionary<string, string?> AgentEnvironment(string? connectionString, string mountPath, params (string Key, string? Value)[] more)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ConnectionStrings__monitordb"] = connectionString,
            ["Agent__NodeName"] = "node-under-test",
            ["Agent__MountPath"] = mountPath,
        };
        foreach (var (key, value) in more)
        {
            environment[key] = value;
        }

        return environment;
    }

    public static AgentProcess Start(IDictionary<string, string?> environment, params string[] arguments) =>
        StartAs(runAs: null, environment, arguments);

    /// <summary>Starts the agent as another user (through runuser), e.g. to meet permissions that root would bypass.</summary>
    public static AgentProcess StartAs(string? runAs, IDictionary<string, string?> environment, params string[] arguments) =>
        StartWrapped(runAs, wrapper: [], environment, arguments);

    /// <summary>Starts the agent through <paramref name="wrapper"/> (e.g. <c>unshare -n</c>: in a network namespace of its own).</summary>
    public static AgentProcess StartWrapped(string? runAs, string[] wrapper, IDictionary<string, string?> environment, params string[] arguments)
    {
        string[] command = NativeAgent is { } native ? [native] : ["dotnet", AgentAssembly];
        command = [.. wrapper, .. command];
        if (runAs is not null)
        {
            command = ["runuser", "-u", runAs, "--", .. ReachableBy(runAs, command)];
        }

        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Start from a clean slate: nothing from the test runner's environment decides the agent's behaviour.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("ConnectionStrings__", StringComparison.Ordinal)
                     || k.StartsWith("Agent__", StringComparison.Ordinal) || k.StartsWith("OTEL_", StringComparison.Ordinal)
                     || k.StartsWith("PG", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_CLI_HOME"] = Path.GetTempPath();
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        return new AgentProcess(Process.Start(start)!);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancellation.Token);
        _process.WaitForExit(); // drains the output readers
        return _process.ExitCode;
    }

    /// <summary>Waits until <paramref name="count"/> output lines contain <paramref name="text"/>.</summary>
    public async Task WaitForLinesAsync(string text, int count, TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        while (_lines.Count(line => line.Contains(text, StringComparison.Ordinal)) < count)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The agent exited ({_process.ExitCode}) before printing '{text}' {count} times:\n{Output}");
            }

            try
            {
                await _lineSignal.WaitAsync(TimeSpan.FromMilliseconds(200), cancellation.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"The agent did not print '{text}' {count} times within {timeout}:\n{Output}");
            }
        }
    }

    public int CountLines(string text) => _lines.Count(line => line.Contains(text, StringComparison.Ordinal));

    /// <summary>Sends SIGTERM, as Kubernetes does, and waits for the agent to exit.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
        }

        return await WaitForExitAsync(timeout);
    }

    /// <summary>Sends SIGKILL (a crash, an OOM kill) and waits for the agent to exit.</summary>
    public async Task KillAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 9);
        }

        await WaitForExitAsync(timeout);
    }

    /// <summary>
    /// The same command, run from a world-readable copy of the agent's folder when <paramref name="user"/>
    /// cannot reach the build output where it is (a checkout under a private home directory, say).
    /// </summary>
    private static string[] ReachableBy(string user, string[] command)
    {
        var program = command[^1];
        if (Run("runuser", "-u", user, "--", "test", "-r", program) == 0)
        {
            return command;
        }

        var copy = Path.Combine(Path.GetTempPath(), $"nodeagent-shared-{Environment.ProcessId}");
        if (!Directory.Exists(copy))
        {
            Run("cp", "-r", Path.GetDirectoryName(program)!, copy);
            Run("chmod", "-R", "a+rX", copy);
        }

        return [.. command[..^1], Path.Combine(copy, Path.GetFileName(program))];
    }

    private static int Run(string fileName, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(fileName, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        process.WaitForExit();
        return process.ExitCode;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Collect(string? line)
    {
        if (line is not null)
        {
            _lines.Enqueue(line);
            _lineSignal.Release();
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
