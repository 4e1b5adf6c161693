// Worker hosts: a VNet with a NAT gateway (outbound only: apt, the .NET runtime, image pulls,
// Storage, Key Vault), an NSG without inbound rules from the internet, and a Linux scale set whose
// cloud-init (worker/cloud-init.yaml) installs docker.io and the ASP.NET Core runtime and runs the
// published worker as the systemd service ecs-worker. At each service start the host reads the
// storage connection string from Key Vault with its managed identity (IMDS token), so no secret is
// in the VM model or on disk.
param namePrefix string
param location string
param tags object
param count int
param vmSize string
param osDiskSizeGB int
param adminUsername string
param sshPublicKey string

@description('Resource id of the hosts\' user-assigned identity.')
param identityId string
param identityClientId string

param vnetAddressPrefix string
param subnetPrefix string

@description('Key Vault URI (https://<name>.vault.azure.net/).')
param keyVaultUri string
param storageConnectionSecretName string

@description('URL of the published worker (.tar.gz).')
param packageUrl string

@description('Fetch packageUrl with a managed identity token (a blob in this deployment\'s account).')
param packageUsesManagedIdentity bool
param dotnetChannel string

@description('Worker__* and Ecs__* settings for the worker, name to value.')
param settings object

// Token audience for Key Vault in this cloud (https://vault.azure.net in the public cloud).
var keyVaultResource = 'https://${substring(environment().suffixes.keyvaultDns, 1)}'

// /etc/ecs-worker/worker.env: read by systemd (EnvironmentFile) for the worker and its start script.
var hostSettings = {
  WORKER_IDENTITY_CLIENT_ID: identityClientId
  KEY_VAULT_URI: keyVaultUri
  KEY_VAULT_RESOURCE: keyVaultResource
  STORAGE_SECRET_NAME: storageConnectionSecretName
  WORKER_PACKAGE_URL: packageUrl
  WORKER_PACKAGE_AUTH: packageUsesManagedIdentity ? 'managed-identity' : 'none'
  DOTNET_CHANNEL: dotnetChannel
  DOTNET_ROOT: '/usr/lib/dotnet'
  DOTNET_NOLOGO: '1'
  Worker__StateDirectory: '/var/lib/ecs-worker/state'
}
var envFile = '${join(map(items(union(hostSettings, settings)), s => '${s.key}=${s.value}'), '\n')}\n'
var cloudInit = replace(loadTextContent('../worker/cloud-init.yaml'), '__WORKER_ENV_B64__', base64(envFile))

resource nsg 'Microsoft.Network/networkSecurityGroups@2025-05-01' = {
  name: 'nsg-${namePrefix}'
  location: location
  tags: tags
  properties: {
    // Only the default rules: VNet and load balancer traffic in, nothing from the internet. Task
    // ports are reachable inside the VNet; add rules (or a load balancer) to expose services.
    securityRules: []
  }
}

resource natIp 'Microsoft.Network/publicIPAddresses@2025-05-01' = {
  name: 'pip-${namePrefix}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource nat 'Microsoft.Network/natGateways@2025-05-01' = {
  name: 'ng-${namePrefix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 10
    publicIpAddresses: [
      {
        id: natIp.id
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2025-05-01' = {
  name: 'vnet-${namePrefix}'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    subnets: [
      {
        name: 'workers'
        properties: {
          addressPrefix: subnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          natGateway: {
            id: nat.id
          }
          // Outbound goes through the NAT gateway, never Azure's implicit default outbound access.
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource scaleSet 'Microsoft.Compute/virtualMachineScaleSets@2025-04-01' = {
  name: 'vmss-${namePrefix}'
  location: location
  tags: tags
  sku: {
    name: vmSize
    tier: 'Standard'
    capacity: count
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    orchestrationMode: 'Uniform'
    // Model changes (a new cloud-init, image or size) reach existing hosts only when they are
    // reimaged: az vmss update-instances / az vmss reimage.
    upgradePolicy: {
      mode: 'Manual'
    }
    // Overprovisioned VMs would boot, register as container instances and be deleted again.
    overprovision: false
    singlePlacementGroup: false
    virtualMachineProfile: {
      osProfile: {
        computerNamePrefix: 'ecsw'
        adminUsername: adminUsername
        customData: base64(cloudInit)
        linuxConfiguration: {
          disablePasswordAuthentication: true
          ssh: {
            publicKeys: [
              {
                path: '/home/${adminUsername}/.ssh/authorized_keys'
                keyData: sshPublicKey
              }
            ]
          }
          provisionVMAgent: true
        }
      }
      storageProfile: {
        // worker/cloud-init.yaml assumes Ubuntu 24.04 (package names, systemd, iptables-nft).
        imageReference: {
          publisher: 'Canonical'
          offer: 'ubuntu-24_04-lts'
          sku: 'server'
          version: 'latest'
        }
        osDisk: {
          createOption: 'FromImage'
          caching: 'ReadWrite'
          diskSizeGB: osDiskSizeGB
          managedDisk: {
            storageAccountType: 'Premium_LRS'
          }
        }
      }
      securityProfile: {
        securityType: 'TrustedLaunch'
        uefiSettings: {
          secureBootEnabled: true
          vTpmEnabled: true
        }
      }
      diagnosticsProfile: {
        // Managed boot diagnostics: the serial log shows cloud-init's progress and errors.
        bootDiagnostics: {
          enabled: true
        }
      }
      networkProfile: {
        networkInterfaceConfigurations: [
          {
            name: 'nic'
            properties: {
              primary: true
              enableAcceleratedNetworking: false
              ipConfigurations: [
                {
                  name: 'ipconfig'
                  properties: {
                    primary: true
                    subnet: {
                      id: vnet.properties.subnets[0].id
                    }
                  }
                }
              ]
            }
          }
        ]
      }
    }
  }
}

output scaleSetName string = scaleSet.name
output vnetName string = vnet.name
