// Worker hosts: a Linux scale set in the workers subnet (modules/network.bicep) whose cloud-init
// (worker/cloud-init.yaml) installs docker.io and the ASP.NET Core runtime and runs the published
// worker as the systemd service ecs-worker. The worker reaches Tables and Queues with the hosts'
// managed identity (AzureWebJobsStorage__* settings: endpoints, credential, client id), so no
// storage key or other secret is on the hosts, in the VM model or on disk.
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

@description('Resource id of the workers subnet.')
param subnetId string

@description('Table and Queue service endpoints of the storage account (https://<account>.table.core.windows.net/, ...).')
param tableServiceUri string
param queueServiceUri string

@description('URL of the published worker (.tar.gz).')
param packageUrl string

@description('Fetch packageUrl with a managed identity token (a blob in this deployment\'s account).')
param packageUsesManagedIdentity bool
param dotnetChannel string

@description('Worker__* and Ecs__* settings for the worker, name to value.')
param settings object

@description('Whether the scale set is a managed worker pool, resized by poolManagerPrincipalId (the Functions app\'s identity).')
param managedPool bool = false
param poolManagerPrincipalId string = ''

// Virtual Machine Contributor: read the scale set and its VMs, set its capacity, delete instances.
var virtualMachineContributor = '9980e02c-c2be-4d73-94e8-173b1dc7cf3c'

// /etc/ecs-worker/worker.env: read by systemd (EnvironmentFile) for the worker and its start script.
var hostSettings = {
  WORKER_IDENTITY_CLIENT_ID: identityClientId
  // An identity-based connection (src/Core/Storage/StorageAccess.cs), named as the Functions host names one.
  AzureWebJobsStorage__tableServiceUri: tableServiceUri
  AzureWebJobsStorage__queueServiceUri: queueServiceUri
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  WORKER_PACKAGE_URL: packageUrl
  WORKER_PACKAGE_AUTH: packageUsesManagedIdentity ? 'managed-identity' : 'none'
  DOTNET_CHANNEL: dotnetChannel
  DOTNET_ROOT: '/usr/lib/dotnet'
  DOTNET_NOLOGO: '1'
  Worker__StateDirectory: '/var/lib/ecs-worker/state'
}
var envFile = '${join(map(items(union(hostSettings, settings)), s => '${s.key}=${s.value}'), '\n')}\n'
var cloudInit = replace(loadTextContent('../worker/cloud-init.yaml'), '__WORKER_ENV_B64__', base64(envFile))

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
                      id: subnetId
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

// Managed scaling resizes this scale set and deletes the VMs it drained, with this role on it alone.
resource poolManager 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (managedPool) {
  name: guid(scaleSet.id, 'pool-manager', virtualMachineContributor)
  scope: scaleSet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', virtualMachineContributor)
    principalId: poolManagerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output scaleSetName string = scaleSet.name
