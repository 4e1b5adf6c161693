using System.Runtime.InteropServices;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Tests.Registration;

public sealed class HostResourcesTests
{
    [Fact]
    public void Cpu_is_1024_units_per_core_unless_configured()
    {
        Assert.Equal(4096, HostResources.Cpu(new WorkerOptions(), cores: 4));
        Assert.Equal(1500, HostResources.Cpu(new WorkerOptions { Cpu = 1500 }, cores: 4));
    }

    [Fact]
    public void Memory_is_the_total_less_the_reservation_unless_configured()
    {
        Assert.Equal(7936, HostResources.Memory(new WorkerOptions(), totalMiB: 8192));
        Assert.Equal(7692, HostResources.Memory(new WorkerOptions { ReservedMemoryMiB = 500 }, totalMiB: 8192));
        Assert.Equal(2048, HostResources.Memory(new WorkerOptions { MemoryMiB = 2048 }, totalMiB: 8192));
        Assert.Equal(0, HostResources.Memory(new WorkerOptions(), totalMiB: 100));
    }

    [Fact]
    public void Mem_total_is_read_from_proc_meminfo_in_mib()
    {
        const string meminfo = "MemTotal:       24684012 kB\nMemFree:        22443212 kB\nMemAvailable:   23511548 kB\n";
        Assert.Equal(24105, HostResources.MemTotalMiB(meminfo));
        Assert.Null(HostResources.MemTotalMiB("MemFree: 1 kB\n"));
    }

    [Theory]
    [InlineData(Architecture.X64, "x86_64")]
    [InlineData(Architecture.Arm64, "arm64")]
    public void Cpu_architecture_uses_ecs_names(Architecture architecture, string expected)
        => Assert.Equal(expected, HostResources.CpuArchitecture(architecture));
}
