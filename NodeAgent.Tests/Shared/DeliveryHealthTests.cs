using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using Npgsql;

namespace NodeAgent.Tests.Shared;

/// <summary>What a capability's /health entry says, from the outcomes of its latest records.</summary>
public sealed class DeliveryHealthTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Healthy_after_a_store_until_nothing_is_stored_for_three_intervals()
    {
        var health = new DeliveryHealth(_time);
        health.Stored();

        _time.Advance(Interval * 3);
        Assert.Equal(HealthStatus.Healthy, health.Evaluate("scan", Interval).Status);

        _time.Advance(TimeSpan.FromSeconds(1));
        var stale = health.Evaluate("scan", Interval);
        Assert.Equal(HealthStatus.Degraded, stale.Status);
        Assert.Contains("the last scan was stored 181 s ago", stale.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fresh_agent_is_healthy_until_three_intervals_pass_without_a_store()
    {
        var health = new DeliveryHealth(_time);
        Assert.Equal(HealthStatus.Healthy, health.Evaluate("scan", Interval).Status);

        _time.Advance(Interval * 3 + TimeSpan.FromSeconds(1));
        Assert.Contains("no scan stored since the agent started", health.Evaluate("scan", Interval).Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Transient_store_failures_degrade_only_from_the_third_in_a_row_and_a_store_clears_them()
    {
        var health = new DeliveryHealth(_time);
        var outage = new NpgsqlException("Failed to connect to 127.0.0.1:5432");

        health.StoreFailed(outage);
        health.StoreFailed(outage);
        Assert.Equal(HealthStatus.Healthy, health.Evaluate("scan", Interval).Status);

        health.StoreFailed(outage);
        Assert.Equal(HealthStatus.Degraded, health.Evaluate("scan", Interval).Status);

        health.Stored();
        Assert.Equal(HealthStatus.Healthy, health.Evaluate("scan", Interval).Status);
    }

    [Theory]
    [InlineData("42501")]
    [InlineData("28P01")]
    [InlineData("3D000")]
    [InlineData("42P01")]
    public void Refusals_three_in_a_row_make_it_unhealthy(string sqlState)
    {
        var health = new DeliveryHealth(_time);
        var refusal = new PostgresException("refused", "ERROR", "ERROR", sqlState);

        for (var i = 0; i < DeliveryHealth.FailuresInARow; i++)
        {
            health.StoreFailed(refusal);
        }

        var result = health.Evaluate("scan", Interval);
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains(sqlState, result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreadable_mount_is_unhealthy_at_once_and_other_collect_failures_degrade_from_the_third()
    {
        var health = new DeliveryHealth(_time);
        health.CollectFailed(new MountPathException("Agent:MountPath '/mnt/x' does not exist (is the hostPath volume mounted?)."));
        Assert.Equal(HealthStatus.Unhealthy, health.Evaluate("scan", Interval).Status);

        health.Collected();
        Assert.Equal(HealthStatus.Healthy, health.Evaluate("scan", Interval).Status);

        for (var i = 0; i < DeliveryHealth.FailuresInARow; i++)
        {
            health.CollectFailed(new InvalidOperationException("walker failed"));
        }

        Assert.Equal(HealthStatus.Degraded, health.Evaluate("scan", Interval).Status);
    }
}
