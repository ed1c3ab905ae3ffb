using System.Diagnostics;
using System.Text;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>A real directory tree under /tmp, removed after the test.</summary>
public sealed class TempTree : IDisposable
{
    public TempTree()
    {
        Root = Directory.CreateTempSubdirectory("nodeagent-tree-").FullName;
    }

    public string Root { get; }

    public string File(string relativePath, string content = "x")
    {
        var path = Path.Combine(Root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public string Dir(string relativePath) => Directory.CreateDirectory(Path.Combine(Root, relativePath)).FullName;

    /// <summary>Runs a shell command inside the tree (for names .NET cannot create, FIFOs, sockets).</summary>
    public void Shell(string script)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = Root, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"bash -c '{script}' failed: {error}");
        }
    }

    /// <summary>Many files in a few directories, quickly.</summary>
    public void Populate(int files, int perDirectory = 1000)
    {
        for (var i = 0; i < files; i++)
        {
            var dir = Path.Combine(Root, $"d{i / perDirectory:D4}");
            if (i % perDirectory == 0)
            {
                Directory.CreateDirectory(dir);
            }

            using var _ = System.IO.File.Create(Path.Combine(dir, $"file-{i:D7}.txt"));
        }
    }

    public void Dispose()
    {
        // rm copes with trees deeper than PATH_MAX, which Directory.Delete does not.
        var start = new ProcessStartInfo("bash") { RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("chmod -R u+rwx \"$0\" 2>/dev/null; rm -rf \"$0\"");
        start.ArgumentList.Add(Root);
        using var process = Process.Start(start)!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
    }

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);
}
