using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>
/// <c>infra/</c> compiled with the Bicep CLI (<c>infra/validate.sh</c>: the NuGet package
/// Azure.Bicep.CommandLine, errors and linter warnings fail it), then the ARM template read for what
/// keeps keys and networks closed: no storage key on the worker hosts, data roles per table and
/// queue, firewalls that deny by default, no basic publishing credentials, purge protection.
/// </summary>
public sealed class InfraTests : IClassFixture<InfraTests.CompiledTemplate>
{
    private readonly CompiledTemplate _compiled;

    public InfraTests(CompiledTemplate compiled) => _compiled = compiled;

    private const string TableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    private const string QueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";

    [Fact]
    public void The_Bicep_builds_without_errors_or_warnings()
        => Assert.True(_compiled.ExitCode == 0, _compiled.Output);

    [Fact]
    public void Worker_hosts_reach_storage_with_their_managed_identity_and_hold_no_key()
    {
        var workers = _compiled.Module("workers").ToJsonString();
        Assert.DoesNotContain("listKeys", workers);
        Assert.DoesNotContain("KEY_VAULT", workers);
        Assert.DoesNotContain("vault", workers, StringComparison.OrdinalIgnoreCase);
        var settings = _compiled.Module("workers")["variables"]!["hostSettings"]!;
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]!.GetValue<string>());
        Assert.NotNull(settings["AzureWebJobsStorage__tableServiceUri"]);
        Assert.NotNull(settings["AzureWebJobsStorage__queueServiceUri"]);

        // The vault grants its secrets to the Functions app's identity alone.
        var vaultGrants = Resources(_compiled.Module("keyvault")).Where(r => Type(r) == "Microsoft.Authorization/roleAssignments").ToList();
        Assert.All(vaultGrants, grant => Assert.Contains("functionIdentityId", grant["name"]!.GetValue<string>()));
    }

    [Fact]
    public void The_worker_identity_has_table_and_queue_data_roles_scoped_to_each_table_and_queue()
    {
        var storage = _compiled.Module("storage");
        var grants = Resources(storage)
            .Where(r => Type(r) == "Microsoft.Authorization/roleAssignments" && r["name"]!.GetValue<string>().Contains("workerIdentityId", StringComparison.Ordinal))
            .ToList();
        var tables = grants.Single(g => HasRole(storage, g, TableDataContributor));
        Assert.Contains("tableServices/tables", tables["scope"]!.GetValue<string>());
        Assert.NotNull(tables["copy"]); // one per table

        var queues = grants.Where(g => HasRole(storage, g, QueueDataContributor)).ToList();
        Assert.Contains(queues, q => q["scope"]!.GetValue<string>().Contains("queueServices/queues", StringComparison.Ordinal) && q["copy"] is not null);
        // Command queues are named at run time: the account-wide grant is conditioned on their prefix.
        var commandQueues = Assert.Single(queues, q => q["properties"]!["condition"] is not null);
        Assert.Contains("queues:name] StringStartsWith", commandQueues["properties"]!["condition"]!.GetValue<string>());
    }

    [Fact]
    public void Storage_and_Key_Vault_deny_other_networks_and_purge_protection_is_on()
    {
        var account = Resources(_compiled.Module("storage")).Single(r => Type(r) == "Microsoft.Storage/storageAccounts");
        Assert.Equal("Deny", account["properties"]!["networkAcls"]!["defaultAction"]!.GetValue<string>());
        var vault = Resources(_compiled.Module("keyvault")).Single(r => Type(r) == "Microsoft.KeyVault/vaults");
        Assert.Equal("Deny", vault["properties"]!["networkAcls"]!["defaultAction"]!.GetValue<string>());
        Assert.True(_compiled.Template["parameters"]!["keyVaultPurgeProtection"]!["defaultValue"]!.GetValue<bool>());
    }

    [Fact]
    public void The_Functions_app_uses_its_identity_for_storage_allows_no_basic_publishing_and_goes_out_through_the_VNet()
    {
        var resources = Resources(_compiled.Module("functionapp")).ToList();
        var policies = resources.Where(r => Type(r) == "Microsoft.Web/sites/basicPublishingCredentialsPolicies").ToList();
        Assert.Equal(["'ftp'", "'scm'"], policies.Select(p => p["name"]!.GetValue<string>().Split(", ")[^1].TrimEnd(')', ']')).Order());
        Assert.All(policies, p => Assert.False(p["properties"]!["allow"]!.GetValue<bool>()));
        var site = resources.Single(r => Type(r) == "Microsoft.Web/sites");
        // The host and the control plane reach storage with the app's identity; no key but the content share's.
        var settings = _compiled.Module("functionapp")["variables"]!["platformSettings"]!.AsObject();
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]!.GetValue<string>());
        Assert.False(settings.ContainsKey("AzureWebJobsStorage"));
        Assert.True(site["properties"]!["outboundVnetRouting"]!["allTraffic"]!.GetValue<bool>());
        Assert.NotNull(site["properties"]!["virtualNetworkSubnetId"]);
    }

    [Fact]
    public void The_secret_stores_key_encryption_key_is_a_vault_key_the_app_may_only_wrap_and_unwrap_with()
    {
        var module = _compiled.Module("keyvault");
        var resources = Resources(module).ToList();
        var key = resources.Single(r => Type(r) == "Microsoft.KeyVault/vaults/keys");
        Assert.Equal(["unwrapKey", "wrapKey"], key["properties"]!["keyOps"]!.AsArray().Select(o => o!.GetValue<string>()).Order());
        // Key Vault Crypto Service Encryption User, scoped to the key alone.
        var grant = resources.Single(r => Type(r) == "Microsoft.Authorization/roleAssignments" && HasRole(module, r, "e147488a-f6f5-4113-8e2d-b22465e65bf6"));
        Assert.Contains("vaults/keys", grant["scope"]!.GetValue<string>());
        var settings = _compiled.Module("functionapp")["variables"]!["platformSettings"]!.AsObject();
        Assert.Contains("kekUri", settings["Secrets__KeyVaultKeyId"]!.GetValue<string>());
        Assert.False(settings.ContainsKey("Secrets__KeyEncryptionKeys"));
    }

    [Fact]
    public void A_managed_worker_pool_is_resized_by_the_app_with_a_role_on_the_scale_set_alone()
    {
        var workers = _compiled.Module("workers");
        // Virtual Machine Contributor, scoped to the scale set, only when the hosts are a capacity provider's pool.
        var grant = Resources(workers).Single(r => Type(r) == "Microsoft.Authorization/roleAssignments");
        Assert.True(HasRole(workers, grant, "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"));
        Assert.Contains("virtualMachineScaleSets", grant["scope"]!.GetValue<string>());
        Assert.Contains("managedPool", grant["condition"]!.GetValue<string>());
        // The app learns the pool from its settings; the hosts register with the capacity provider.
        var main = _compiled.Template.ToJsonString();
        foreach (var setting in new[] { "Capacity__ScaleSets__0__Pool", "Capacity__ScaleSets__0__ResourceId", "Capacity__ScaleSets__0__Cluster", "Worker__CapacityProvider" })
            Assert.Contains(setting, main);
        Assert.Contains("poolSettings", _compiled.Module("functionapp")["variables"]!["allSettings"]!.GetValue<string>());
    }

    [Fact]
    public void The_load_balancer_data_plane_reaches_its_table_and_the_reconcile_queue_with_its_identity_and_only_listener_ports_are_open()
    {
        var module = _compiled.Module("loadbalancers");
        var text = module.ToJsonString();
        Assert.DoesNotContain("listKeys", text);
        Assert.DoesNotContain("vault", text, StringComparison.OrdinalIgnoreCase);
        var settings = module["variables"]!["hostSettings"]!;
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]!.GetValue<string>());
        Assert.NotNull(settings["AzureWebJobsStorage__tableServiceUri"]);
        Assert.NotNull(settings["AzureWebJobsStorage__queueServiceUri"]);
        Assert.Equal("0.0.0.0", settings["LoadBalancer__ListenAddress"]!.GetValue<string>());
        Assert.Contains("wakePort", settings["LoadBalancer__WakePort"]!.GetValue<string>());

        // Storage: Table Data Contributor on the LoadBalancing table, Queue Data Contributor on the reconcile queue,
        // Blob Data Reader on the package container; nothing on the account.
        var storage = _compiled.Module("storage");
        var grants = Resources(storage)
            .Where(r => Type(r) == "Microsoft.Authorization/roleAssignments" && r["name"]!.GetValue<string>().Contains("loadBalancerIdentityId", StringComparison.Ordinal))
            .ToList();
        Assert.Equal(3, grants.Count);
        Assert.All(grants, g => Assert.Matches("tableServices/tables|queueServices/queues|blobServices/containers", g["scope"]!.GetValue<string>()));
        var table = Assert.Single(grants, g => HasRole(storage, g, TableDataContributor));
        Assert.Contains("variables('dataPlaneTable')", table["scope"]!.GetValue<string>());
        Assert.Equal("LoadBalancing", storage["variables"]!["dataPlaneTable"]!.GetValue<string>());
        var queue = Assert.Single(grants, g => HasRole(storage, g, QueueDataContributor));
        Assert.Contains("variables('reconcileQueueIndex')", queue["scope"]!.GetValue<string>());
        Assert.Equal("reconcile", storage["variables"]!["workerQueues"]![storage["variables"]!["reconcileQueueIndex"]!.GetValue<int>()]!.GetValue<string>());

        // Network: the data plane's subnet admits only the listener ports, only from the given ranges (none by default).
        var nsg = Resources(_compiled.Module("network")).Single(r => Type(r) == "Microsoft.Network/networkSecurityGroups" && r["name"]!.GetValue<string>().Contains("-lb", StringComparison.Ordinal));
        var rules = nsg["properties"]!["securityRules"]!.GetValue<string>();
        Assert.StartsWith("[if(empty(parameters('listenerSourceRanges')), createArray(),", rules);
        Assert.Contains("'destinationPortRanges', parameters('listenerPorts')", rules);
        Assert.Empty(_compiled.Template["parameters"]!["loadBalancerSourceRanges"]!["defaultValue"]!.AsArray());
    }

    private static string Type(JsonNode resource) => resource["type"]!.GetValue<string>();

    /// <summary>Whether the grant's role is <paramref name="roleId"/>, written out or through a variable of the template.</summary>
    private static bool HasRole(JsonNode template, JsonNode grant, string roleId)
    {
        var role = grant["properties"]!["roleDefinitionId"]!.GetValue<string>();
        var names = (template["variables"] as JsonObject ?? [])
            .Where(v => v.Value is JsonValue value && value.TryGetValue<string>(out var text) && text == roleId)
            .Select(v => $"variables('{v.Key}')");
        return role.Contains(roleId, StringComparison.Ordinal) || names.Any(n => role.Contains(n, StringComparison.Ordinal));
    }

    private static IEnumerable<JsonNode> Resources(JsonNode template)
        => template["resources"] switch
        {
            JsonArray array => array.OfType<JsonNode>(),
            JsonObject symbolic => symbolic.Select(p => p.Value).OfType<JsonNode>(),
            _ => [],
        };

    /// <summary>infra/validate.sh run once for the class; the compiled main.json and the script's output.</summary>
    public sealed class CompiledTemplate : IAsyncLifetime
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("ecs-infra-").FullName;

        public int ExitCode { get; private set; }
        public string Output { get; private set; } = "";
        public JsonNode Template { get; private set; } = new JsonObject();

        /// <summary>The template of the module deployed as <paramref name="name"/>.</summary>
        public JsonNode Module(string name)
            => Resources(Template).Single(r => Type(r) == "Microsoft.Resources/deployments" && r["name"]!.GetValue<string>() == name)["properties"]!["template"]!;

        public async Task InitializeAsync()
        {
            var root = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            var start = new ProcessStartInfo("bash", [Path.Combine(root, "infra", "validate.sh"), "--out", _directory])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            ExitCode = process.ExitCode;
            Output = await stdout + await stderr;
            var compiled = Path.Combine(_directory, "main.json");
            if (File.Exists(compiled)) Template = JsonNode.Parse(await File.ReadAllTextAsync(compiled))!;
        }

        public Task DisposeAsync()
        {
            Directory.Delete(_directory, recursive: true);
            return Task.CompletedTask;
        }
    }
}
