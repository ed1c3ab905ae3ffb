using Microsoft.Extensions.DependencyInjection;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Insight;

/// <summary>
/// Labels and the staff's questions (the schema is its migrations), and the relabel that makes stored labels follow
/// a template change: a loop that takes the database's relabel steps, one agent at a time. Glossary: a <em>step</em> is
/// one short transaction of attribution_relabel_step (a batch of subjects, or one day of daily counts).
/// </summary>
public sealed class InsightCapability : ICapability
{
    public string Name => "insight";

    public IReadOnlyList<SettingKey> Settings => InsightSettings.Keys;

    public void Add(AgentBuilder agent) => agent.AddInsight();
}

public static class InsightAgentBuilderExtensions
{
    /// <summary>Takes relabel steps after template changes (a long-running agent only).</summary>
    public static AgentBuilder AddInsight(this AgentBuilder agent)
    {
        var settings = InsightSettings.Load(agent.Configuration);
        if (!settings.Relabel || agent.Settings.RunOnce)
        {
            return agent;
        }

        agent.Services.AddSingleton(settings);
        agent.Services.AddSingleton<InsightMetrics>();
        return agent.AddLoop<RelabelLoop>();
    }
}
