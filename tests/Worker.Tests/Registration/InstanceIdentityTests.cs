using Serverless.Worker.Registration;

namespace Serverless.Worker.Tests.Registration;

public sealed class InstanceIdentityTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "ecs-worker-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void A_new_worker_makes_up_an_id_and_keeps_it_across_restarts()
    {
        var options = new WorkerOptions { StateDirectory = _directory };
        var first = InstanceIdentity.Resolve(options);
        Assert.True(InstanceIdentity.IsValid(first));
        Assert.Equal(first, InstanceIdentity.Resolve(options));
        Assert.Equal(first, File.ReadAllText(Path.Combine(_directory, InstanceIdentity.FileName)).Trim());
    }

    [Fact]
    public void A_configured_id_wins_and_is_not_saved()
    {
        var options = new WorkerOptions { StateDirectory = _directory, InstanceId = "ABCDEF0123456789ABCDEF0123456789" };
        Assert.Equal("abcdef0123456789abcdef0123456789", InstanceIdentity.Resolve(options));
        Assert.False(Directory.Exists(_directory));
    }

    [Fact]
    public void A_malformed_id_is_refused_with_a_clear_message()
    {
        var error = Assert.Throws<InvalidOperationException>(() => InstanceIdentity.Resolve(new WorkerOptions { InstanceId = "web-1" }));
        Assert.Contains("32 hexadecimal digits", error.Message);
    }

    [Fact]
    public void The_default_state_directory_is_per_cluster_under_the_xdg_state_home()
        => Assert.EndsWith(Path.Combine("ecs-worker", "prod"), InstanceIdentity.StateDirectory(new WorkerOptions { Cluster = "prod" }));
}
