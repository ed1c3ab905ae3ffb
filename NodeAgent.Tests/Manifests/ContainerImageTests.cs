using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace NodeAgent.Tests.Manifests;

/// <summary>The image the SDK (NodeAgent.Container.props) and the Dockerfile build is the one the overlay runs.</summary>
[Collection(ManifestsCollection.Name)]
public sealed partial class ContainerImageTests(ManifestsFixture fixture)
{
    private static XElement ContainerProps() =>
        XDocument.Load(RepositoryRoot.Combine("NodeAgent", "NodeAgent.Container.props")).Root!;

    private static string Property(XElement props, string name) =>
        Assert.Single(props.Descendants(name)).Value.Trim();

    [Fact]
    public void Sdk_container_properties_match_the_overlay_image_and_port()
    {
        var props = ContainerProps();
        var (repository, tag) = AgentOverlayTests.SplitImage(fixture.Cnpg.AgentContainer.Image);

        Assert.EndsWith("/" + Property(props, "ContainerRepository"), repository, StringComparison.Ordinal);
        Assert.Equal(Property(props, "ContainerImageTag"), tag);
        Assert.Equal("noble-chiseled", Property(props, "ContainerFamily"));
        Assert.Matches(@"^[1-9]\d*$", Property(props, "ContainerUser")); // numeric and not root

        var port = AgentOverlayTests.ListeningPort(fixture.Cnpg.AgentLiteralEnvironment());
        var containerPort = Assert.Single(props.Descendants("ContainerPort"));
        Assert.Equal(port.ToString(), containerPort.Attribute("Include")?.Value);
    }

    [Fact]
    public void Dockerfile_builds_native_aot_on_chiseled_runtime_deps_and_exposes_the_agent_port()
    {
        var dockerfile = File.ReadAllText(RepositoryRoot.Combine("NodeAgent", "Dockerfile"));
        var port = AgentOverlayTests.ListeningPort(fixture.Cnpg.AgentLiteralEnvironment());

        Assert.Matches(@"(?m)^ARG RUNTIME_IMAGE=mcr\.microsoft\.com/dotnet/runtime-deps:10\.0-noble-chiseled\s*$", dockerfile);
        Assert.Matches($@"(?m)^EXPOSE {port}\s*$", dockerfile);
        Assert.Matches($@"(?m)^ENV ASPNETCORE_HTTP_PORTS={port}\s*$", dockerfile);
        Assert.Matches(@"(?m)^USER \$APP_UID\s*$", dockerfile);
        Assert.DoesNotMatch(@"(?m)^FROM\s+\S+:latest", dockerfile);
        Assert.Equal(2, FromLine().Matches(dockerfile).Count);
    }

    [GeneratedRegex(@"(?m)^FROM\s")]
    private static partial Regex FromLine();
}
