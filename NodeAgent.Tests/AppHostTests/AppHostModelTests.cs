using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace NodeAgent.AppHostTests;

/// <summary>
/// The AppHost's models, built without starting anything: the local run in both PostgreSQL modes (a container, or
/// this machine's server binaries), and the publish model behind AppHost/aspire-manifest.json (one agent
/// "nodeagent", the database as a connection string only), which the mode must not change.
/// </summary>
public sealed class AppHostModelTests
{
    private static readonly string[] Nodes = ["node-1", "node-2"];

    /// <summary>The host ports of the agents' HTTP endpoints in a developer's run, in the order of <see cref="Nodes"/>.</summary>
    private static readonly int[] HostPorts = [9091, 9092];

    [Theory]
    [InlineData("container", typeof(ContainerResource))]
    [InlineData("local", typeof(ExecutableResource))]
    public async Task Run_model_has_postgres_and_two_agents_on_their_own_ports_and_sample_directories(string mode, Type postgresKind)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>([$"--Postgres:Mode={mode}"], cts.Token);

        Assert.True(builder.ExecutionContext.IsRunMode);
        var postgres = Assert.Single(builder.Resources, r => r.Name == "postgres");
        Assert.IsAssignableFrom(postgresKind, postgres);
        var database = Assert.IsAssignableFrom<IResourceWithConnectionString>(Assert.Single(builder.Resources, r => r.Name == "monitordb"));
        Assert.Same(postgres, Assert.IsAssignableFrom<IResourceWithParent>(database).Parent);
        Assert.NotEmpty(database.Annotations.OfType<HealthCheckAnnotation>());

        var agents = builder.Resources.OfType<ProjectResource>().OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(Nodes, agents.Select(a => a.Name));

        foreach (var (agent, hostPort) in agents.Zip(HostPorts))
        {
            var http = Assert.Single(agent.Annotations.OfType<EndpointAnnotation>());
            Assert.Equal("http", http.Name);
            Assert.Equal(hostPort, http.Port);
            Assert.Contains(agent.Annotations.OfType<WaitAnnotation>(), w => w.Resource.Name == "monitordb");
            Assert.NotEmpty(agent.Annotations.OfType<HealthCheckAnnotation>());

            var sampleDirectory = Path.Combine(builder.AppHostDirectory, "samples", agent.Name);
            Assert.True(Directory.Exists(sampleDirectory), $"{sampleDirectory} is missing");
        }
    }

    [Fact]
    public async Task Local_postgres_runs_the_server_binaries_on_an_allocated_port_with_a_kept_data_directory()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var dataDirectory = Path.Combine(Path.GetTempPath(), "nodemonitor-model-" + Guid.NewGuid().ToString("N"));

        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--Postgres:Mode=local", $"--Postgres:DataDirectory={dataDirectory}"], cts.Token);

        var postgres = Assert.IsType<LocalPostgresServerResource>(Assert.Single(builder.Resources, r => r.Name == "postgres"));
        Assert.Equal(dataDirectory, postgres.DataDirectory);
        var endpoint = Assert.Single(postgres.Annotations.OfType<EndpointAnnotation>());
        Assert.Null(endpoint.Port);                                     // allocated by the orchestrator
        Assert.Equal("postgres-password", postgres.PasswordParameter.Name);
        Assert.False(Directory.Exists(dataDirectory), "building the model must not create the cluster");
    }

    [Fact]
    public async Task Unknown_postgres_mode_is_rejected_with_the_key_and_the_choices()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(["--Postgres:Mode=docker"], cts.Token);
        });

        var message = (error.InnerException ?? error).Message;
        Assert.Contains("Postgres:Mode", message, StringComparison.Ordinal);
        Assert.Contains("'container'", message, StringComparison.Ordinal);
        Assert.Contains("'local'", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("container")]
    [InlineData("local")]
    public async Task Publish_model_has_one_agent_on_port_9090_and_no_database_server(string mode)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var outputPath = Path.Combine(Path.GetTempPath(), "node-monitor-apphost-tests", Guid.NewGuid().ToString("N"), "aspire-manifest.json");

        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--publisher", "manifest", "--output-path", outputPath, $"--Postgres:Mode={mode}"], cts.Token);

        Assert.True(builder.ExecutionContext.IsPublishMode);
        Assert.DoesNotContain(builder.Resources, r => r is ContainerResource or ExecutableResource);

        var agent = Assert.Single(builder.Resources.OfType<ProjectResource>());
        Assert.Equal("nodeagent", agent.Name);

        var http = Assert.Single(agent.Annotations.OfType<EndpointAnnotation>());
        Assert.Equal("http", http.Name);
        Assert.Equal(9090, http.TargetPort);
        Assert.Null(http.Port);

        var database = Assert.Single(builder.Resources.OfType<IResourceWithConnectionString>());
        Assert.Equal("monitordb", database.Name);
    }

    [Theory]
    [InlineData("container")]
    [InlineData("local")]
    public async Task Published_manifest_is_the_committed_one_in_either_mode(string mode)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var outputDirectory = Directory.CreateTempSubdirectory("nodemonitor-manifest-").FullName;
        try
        {
            var outputPath = Path.Combine(outputDirectory, "aspire-manifest.json");
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
                ["--publisher", "manifest", "--output-path", outputPath, $"--Postgres:Mode={mode}"], cts.Token);
            await using (var app = await builder.BuildAsync(cts.Token))
            {
                await app.RunAsync(cts.Token);
            }

            // Project paths are written relative to the manifest's folder: compare them as absolute paths.
            var committedPath = Path.Combine(builder.AppHostDirectory, "aspire-manifest.json");
            Assert.Equal(WithAbsoluteProjectPaths(committedPath), WithAbsoluteProjectPaths(outputPath));
        }
        finally
        {
            Directory.Delete(outputDirectory, recursive: true);
        }
    }

    private static string WithAbsoluteProjectPaths(string manifestPath) =>
        System.Text.RegularExpressions.Regex.Replace(
            File.ReadAllText(manifestPath),
            "\"path\": \"([^\"]+\\.csproj)\"",
            match => $"\"path\": \"{Path.GetFullPath(Path.Combine(Path.GetDirectoryName(manifestPath)!, match.Groups[1].Value))}\"");
}
