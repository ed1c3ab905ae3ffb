using System.Diagnostics;

namespace NodeAgent.Tests.Manifests;

/// <summary>Renders a kustomization with kubectl's built-in kustomize, offline, as the operator's `kubectl apply -k` would.</summary>
internal static class Kustomize
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>Renders a kustomization folder of the repository, e.g. "aspirate-output/overlay".</summary>
    public static string Render(string repositoryRelativeDirectory) =>
        RenderDirectory(RepositoryRoot.Combine(repositoryRelativeDirectory.Split('/')));

    /// <summary>
    /// Renders a kustomization that is not committed (an overlay plus an optional component), written to a temporary
    /// folder. Kustomize accepts only relative paths to other kustomizations, so the repository folders are referenced
    /// relative to the temporary folder.
    /// </summary>
    public static string RenderComposition(IEnumerable<string> resources, IEnumerable<string> components)
    {
        var dir = Directory.CreateTempSubdirectory("nodeagent-kustomize-");
        try
        {
            string Relative(string repositoryRelative) =>
                Path.GetRelativePath(dir.FullName, RepositoryRoot.Combine(repositoryRelative.Split('/'))).Replace('\\', '/');

            var text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
                + string.Concat(resources.Select(r => $"- {Relative(r)}\n"))
                + "components:\n"
                + string.Concat(components.Select(c => $"- {Relative(c)}\n"));
            File.WriteAllText(Path.Combine(dir.FullName, "kustomization.yaml"), text);
            return RenderDirectory(dir.FullName);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string RenderDirectory(string directory)
    {
        var start = new ProcessStartInfo("kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("kustomize");
        start.ArgumentList.Add(directory);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("kubectl did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("kubectl (with its built-in kustomize) must be on PATH to validate the manifests.", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"kubectl kustomize {directory} did not finish within {Timeout}.");
            }

            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"kubectl kustomize {directory} failed with exit code {process.ExitCode}:\n{stderr.Result}");
            }

            return stdout.Result;
        }
    }
}
