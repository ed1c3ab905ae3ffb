using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace NodeAgent.AppHostTests;

/// <summary>
/// The AppHost's two models, built without starting anything (no container runtime needed): the local run
/// (PostgreSQL container, agents "node-1" and "node-2" on the sample directories) and the publish model behind
/// AppHost/aspire-manifest.json (one agent "nodeagent", the database as a connection string only).
/// </summary>
public sealed class AppHostModelTests
{
    private static readonly string[] Nodes = ["node-1", "node-2"];

    /// <summary>The fixed host ports of the agents' HTTP endpoints in a local run, in the order of <see cref="Nodes"/>.</summary>
    private static readonly int[] HostPorts = [9091, 9092];

    [Fact]
    public async Task Run_model_has_two_agents_on_their_own_ports_and_sample_directories()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(cts.Token);

        Assert.True(builder.ExecutionContext.IsRunMode);
        Assert.Contains(builder.Resources, r => r.Name == "postgres" && r is ContainerResource);

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
    public async Task Publish_model_has_one_agent_on_port_9090_and_no_database_container()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var outputPath = Path.Combine(Path.GetTempPath(), "node-monitor-apphost-tests", Guid.NewGuid().ToString("N"), "aspire-manifest.json");

        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--publisher", "manifest", "--output-path", outputPath], cts.Token);

        Assert.True(builder.ExecutionContext.IsPublishMode);
        Assert.DoesNotContain(builder.Resources, r => r is ContainerResource);

        var agent = Assert.Single(builder.Resources.OfType<ProjectResource>());
        Assert.Equal("nodeagent", agent.Name);

        var http = Assert.Single(agent.Annotations.OfType<EndpointAnnotation>());
        Assert.Equal("http", http.Name);
        Assert.Equal(9090, http.TargetPort);
        Assert.Null(http.Port);

        var database = Assert.Single(builder.Resources.OfType<IResourceWithConnectionString>());
        Assert.Equal("monitordb", database.Name);
    }
}
