using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.LoadBalancing;

/// <summary>
/// Moves a blue/green deployment's traffic: the production and test listener rules of each
/// <c>loadBalancers</c> entry with an <c>advancedConfiguration</c> get the forward weights the deployment's
/// lifecycle asks for (<see cref="DeploymentLifecycle.Traffic"/>). The data plane follows the rules, so a
/// rewritten weight is a traffic shift.
/// </summary>
public sealed class ListenerTraffic(LoadBalancingActions elb, ILogger<ListenerTraffic> logger)
{
    /// <summary>
    /// Brings the rules to <paramref name="deployment"/>'s traffic. True when they already carried it when read
    /// (nothing written): only then may the deployment move on, so each shift has reached the data plane
    /// (woken by the write) before the caller's next look. A rule that is gone is logged and counts as carried.
    /// </summary>
    public async Task<bool> EnsureAsync(ServiceRecord service, Deployment deployment, CancellationToken cancellationToken)
    {
        if (deployment.Lifecycle is not { } lifecycle) return true;
        var carried = true;
        foreach (var binding in ServiceTargets.Of(service))
        {
            if (binding.AlternateTargetGroupArn is not { } alternate || binding.ProductionListenerRule is not { } production) continue;
            var (green, blue) = lifecycle.AlternateSlot ? (alternate, binding.TargetGroupArn) : (binding.TargetGroupArn, alternate);
            carried &= await EnsureRuleAsync(service, production, blue, green, lifecycle.ProductionPermille, cancellationToken);
            if (binding.TestListenerRule is { } test)
                carried &= await EnsureRuleAsync(service, test, blue, green, lifecycle.TestOnGreen ? TrafficState.All : 0, cancellationToken);
        }
        return carried;
    }

    private async Task<bool> EnsureRuleAsync(ServiceRecord service, string ruleArn, string blue, string green, int permille, CancellationToken cancellationToken)
    {
        try
        {
            if (await elb.ForwardWeightsAsync(ruleArn, blue, green, cancellationToken) is var (b, g) && b + g > 0 && TrafficState.Permille(b, g) == permille)
                return true;
            var (blueWeight, greenWeight) = TrafficState.Weights(permille);
            await elb.SetForwardWeightsAsync(ruleArn, blue, blueWeight, green, greenWeight, cancellationToken);
            logger.LogInformation("Service {Service}: rule {RuleArn} now sends {Permille}/1000 of its traffic to {TargetGroupArn}", service.Name, ruleArn, permille, green);
            return false;
        }
        catch (ElbException e) when (e.ErrorType == "RuleNotFound")
        {
            logger.LogWarning("Service {Service}: listener rule {RuleArn} is gone; no traffic to shift there", service.Name, ruleArn);
            return true;
        }
        catch (ConcurrentUpdateException)
        {
            // The configuration changed under us: the next look reads it again.
            return false;
        }
    }
}
