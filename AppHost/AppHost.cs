// Node Monitor's wiring diagram.
//
// Run mode (`dotnet run --project AppHost`): PostgreSQL with the database "monitordb" and two agents that stand
// in for two Kubernetes nodes, "node-1" and "node-2". Each scans its own sample directory (AppHost/samples/<node>)
// every 15 seconds, so the dashboard shows both writing to the same database. PostgreSQL is a container with a
// data volume (Docker or Podman), or with Postgres:Mode=local this machine's own server binaries (LocalPostgres.cs).
//
// Publish mode (`dotnet run --project AppHost -- --publisher manifest --output-path aspire-manifest.json`):
// the model that AppHost/aspire-manifest.json describes and Aspirate turns into aspirate-output/. In
// Kubernetes PostgreSQL is installed with Helm, so the database is only a connection string here, and there
// is a single agent, "nodeagent", which aspirate-output/overlay turns into a DaemonSet (that overlay
// depends on the resource name).

var builder = DistributedApplication.CreateBuilder(args);

if (builder.ExecutionContext.IsPublishMode)
{
    var monitordb = builder.AddConnectionString("monitordb");

    builder.AddProject<Projects.NodeAgent>("nodeagent", options => options.ExcludeLaunchProfile = true)
        .WithHttpEndpoint(targetPort: 9090)                 // /metrics, /health, /alive
        .WithReference(monitordb)
        .WithEnvironment("Agent__MountPath", "/mnt/node-data");
}
else
{
    IResourceBuilder<IResourceWithConnectionString> monitordb = PostgresMode.IsLocal(builder.Configuration)
        ? builder.AddLocalPostgres("postgres").AddDatabase("monitordb")
        : builder.AddPostgres("postgres").WithDataVolume().AddDatabase("monitordb");

    AddNode("node-1", hostPort: 9091)
        .WithReference(monitordb)
        .WaitFor(monitordb);

    AddNode("node-2", hostPort: 9092)
        .WithReference(monitordb)
        .WaitFor(monitordb);
}

builder.Build().Run();

// One agent playing one node. Its HTTP endpoint is reachable on http://localhost:<hostPort> (9091, 9092: the
// agent's own default, 9090, stays free for an agent started outside Aspire); Aspire passes the port the
// agent must listen on through ASPNETCORE_URLS. The launch profile is ignored so that nothing in the agent's
// Properties/launchSettings.json can add endpoints or ports here or in the manifest.
IResourceBuilder<ProjectResource> AddNode(string node, int hostPort) =>
    builder.AddProject<Projects.NodeAgent>(node, options => options.ExcludeLaunchProfile = true)
        .WithHttpEndpoint(port: hostPort)
        .WithHttpHealthCheck("/health")
        .WithEnvironment("Agent__NodeName", node)
        .WithEnvironment("Agent__MountPath", Path.Combine(builder.AppHostDirectory, "samples", node))
        .WithEnvironment("Agent__ScanInterval", "00:00:15");
